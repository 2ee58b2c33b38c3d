"""Photos as arrays: any file Pillow reads, upright as its EXIF orientation
says, as (H, W, 3) uint8 RGB; and what emotions.py treats as a photo or a
video."""
import os

import numpy as np

from ferkit.data.fer2013 import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


def kind_of(path):
    ext = os.path.splitext(path)[1].lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


class ImageTooLarge(DataError):
    """An image with more pixels than the caller allows (a decompression bomb)."""


def read_image(path, max_pixels=None, name=None):
    """A photo (a path or a file object) as (H, W, 3) uint8 RGB, upright as
    its EXIF orientation says. Grayscale, 16-bit, palette, RGBA/LA (composited
    on white) and CMYK files all come out the same way. Raises DataError
    naming the file (or `name`) otherwise, and ImageTooLarge, before decoding,
    for more than max_pixels pixels."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or path
    try:
        with Image.open(path) as image:
            if max_pixels and image.width * image.height > max_pixels:
                raise ImageTooLarge(name, f"{image.width} x {image.height} pixels is more than the "
                                          f"{max_pixels:,} allowed")
            image.load()  # Decode now: a truncated file fails here, not later.
            image = ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not an image") from None
    except UnidentifiedImageError:
        raise DataError(name, "not an image file (or a format Pillow cannot read)") from None
    except DataError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own limit, checked as it opens the file.
        raise ImageTooLarge(name, f"more pixels than allowed ({str(e).splitlines()[0][:120]})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(name, f"cannot decode the image ({str(e).splitlines()[0][:120]})") from None
    return to_rgb8(image)


def to_rgb8(image):
    """A Pillow image of any mode -> (H, W, 3) uint8 RGB."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit) grayscale: scale the range to 8 bits, don't clip it.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        array = np.asarray(image)
        gray = np.clip(array * (255.0 if array.max() <= 1 else 1.0), 0, 255)
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def to_gray(rgb):
    """ITU-R 601 luma (OpenCV's conversion), as FER2013's grayscale faces."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def downscale(image, side):
    """(copy, factor): the image shrunk so its longer side is at most `side`."""
    import cv2

    factor = min(1.0, side / max(image.shape[:2]))
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor
