"""One sweep on a pool of Ray actors: one per GPU (the embedded backend) or one per WebUI server.

The driver plans, hands out batches grouped by checkpoint and VAE (``schedule``), and saves every
finished batch in the one run folder (``run_sweep`` with a ``RayPool`` as its dispatcher). Ray is
optional (``pip install "sd-webui-sweep[ray]"``): nothing here imports it until a pool starts, and
the extension inside the WebUI never imports this package.
"""
