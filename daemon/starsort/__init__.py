"""starsort: watch camera-import folders, rate photos by face sharpness, file them into star folders."""
__version__ = "0.1.0"
