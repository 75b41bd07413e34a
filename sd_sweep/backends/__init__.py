"""Backends generate the images of a plan: embedded diffusers, a WebUI in-process, or one over HTTP."""
