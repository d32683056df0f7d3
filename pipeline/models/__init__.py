"""Heart and coronary-calcium models behind one interface and an entry-point registry.

``base`` holds the interface (``CACModel``) and ``load_model``; ``classical`` is the
default model without weights; ``unet`` is the DeepCAC2 3-D U-Net.
"""
