"""Data layer: anatomy sources, synthesis of HQ/LQ lesion samples, k-space degradation, split."""
