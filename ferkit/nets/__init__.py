"""The networks: the seed CNN and DNN, the ResNet, the pretrained backbone (and the TensorFlow.js graphs it comes from), precision, loading and saving with the model card."""
