"""Vendor wire formats. Each dialect translates to canonical commands and back."""
