"""The DeepCAC2 3-D U-Net: network, preprocessing, sliding-window inference, model."""
