# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/shared_options.py: the option keys the extension reads (defaults as in v1.10.1)."""

from modules.options import OptionInfo

options_templates = {
    "samples_save": OptionInfo(True, "Always save all generated images"),
    "samples_format": OptionInfo("png", "File format for images"),
    "samples_filename_pattern": OptionInfo("", "Images filename pattern"),
    "grid_save": OptionInfo(True, "Always save all generated image grids"),
    "grid_format": OptionInfo("png", "File format for grids"),
    "grid_only_if_multiple": OptionInfo(True, "Do not save grids consisting of one picture"),
    "return_grid": OptionInfo(True, "Show grid in gallery"),
    "save_incomplete_images": OptionInfo(False, "Save incomplete images"),
    "enable_pnginfo": OptionInfo(True, "Save text information about generation parameters as chunks to png files"),
    "outdir_samples": OptionInfo("", "Output directory for images"),
    "outdir_txt2img_samples": OptionInfo("outputs/txt2img-images", "Output directory for txt2img images"),
    "outdir_img2img_samples": OptionInfo("outputs/img2img-images", "Output directory for img2img images"),
    "outdir_grids": OptionInfo("", "Output directory for grids"),
    "outdir_txt2img_grids": OptionInfo("outputs/txt2img-grids", "Output directory for txt2img grids"),
    "outdir_img2img_grids": OptionInfo("outputs/img2img-grids", "Output directory for img2img grids"),
    "sd_model_checkpoint": OptionInfo(None, "Stable Diffusion checkpoint"),
    "sd_vae": OptionInfo("Automatic", "SD VAE"),
    "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip"),
    "hide_samplers": OptionInfo([], "Hide samplers in user interface"),
    "interrupt_after_current": OptionInfo(True, "Don't Interrupt in the middle"),
    "face_restoration_model": OptionInfo("CodeFormer", "Face restoration model"),
    "eta_noise_seed_delta": OptionInfo(0, "Eta noise seed delta"),
}
