"""Faces drawn on a picture: a box and "Emotion 87%" in one colour per
emotion, the same in every annotated image, figure and the page."""
import numpy as np

def annotate(rgb, faces):
    """A copy of the image with each face's box and "Emotion 87%" drawn on it.
    faces: [(box, emotion, probability)]. The label sits on a filled box in
    the face's colour with black or white text, readable on any background."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    thickness = max(2, round(max(out.shape[:2]) / 400))
    font_scale = max(0.5, max(out.shape[:2]) / 1200)
    for (x, y, w, h), emotion, probability in faces:
        colour = COLOURS.get(emotion, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 0), thickness + 2)  # Dark outline: visible on light images.
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        text = f"{emotion} {probability:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - th - base - 2 * thickness if y - th - base - 2 * thickness >= 0 else y + h
        cv2.rectangle(out, (x - thickness // 2, top), (x + tw + 2 * thickness, top + th + base + 2 * thickness), colour, -1)
        ink = (0, 0, 0) if sum(colour) > DARK_INK_ABOVE else (255, 255, 255)
        cv2.putText(out, text, (x + thickness, top + th + thickness), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink,
                    max(1, thickness - 1), cv2.LINE_AA)
    return out


# Black text on a colour whose R + G + B is above this, white below: the
# label's ink, here and on the page.
DARK_INK_ABOVE = 380

# One colour per emotion (RGB), the same in every annotated image and figure.
COLOURS = {
    "Angry": (230, 57, 70), "Disgust": (106, 153, 78), "Fear": (155, 93, 229), "Happy": (255, 209, 102),
    "Sad": (69, 123, 157), "Surprise": (255, 140, 66), "Neutral": (200, 200, 200),
    "Contempt": (141, 110, 99),
}
