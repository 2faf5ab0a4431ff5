"""Optional bridges to PyTorch-based libraries; imports torch lazily."""
