"""Companion-compatible S3 routes under /uppy/s3/, so stock Uppy uploads into the portal."""
