"""Explanation maps of the CNN fold models (Grad-CAM, occlusion) and their sanity check."""
