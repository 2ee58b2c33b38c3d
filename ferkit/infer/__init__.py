"""Inference: models run on ONNX Runtime or Keras with TTA, the scores, and the inference core every door uses (EmotionReader)."""
