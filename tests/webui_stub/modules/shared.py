# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/shared.py: opts, state, cmd_opts, sd_model, prompt_styles, upscalers, OptionInfo."""

from types import SimpleNamespace

from modules import options, shared_options, shared_state, shared_total_tqdm, styles

cmd_opts = SimpleNamespace(api=True, api_auth=None, nowebui=False)  # mirrors modules/shared_cmd_options.py
opts = options.Options(shared_options.options_templates)  # mirrors modules/shared.py: opts
state = shared_state.State()  # mirrors modules/shared.py: state
prompt_styles = styles.StyleDatabase(
    {
        "cinematic": styles.PromptStyle("cinematic", "{prompt}, cinematic", "", None),
        "gloomy": styles.PromptStyle("gloomy", "dark", "bright", None),
    }
)  # mirrors modules/shared.py: prompt_styles
latent_upscale_modes = {"Latent": {}, "Latent (nearest)": {}}  # mirrors modules/shared.py: latent_upscale_modes
sd_upscalers = [
    SimpleNamespace(name="Lanczos"),
    SimpleNamespace(name="Nearest"),
]  # mirrors modules/shared.py: sd_upscalers
sd_model = SimpleNamespace(sd_checkpoint_info=None)  # mirrors modules/shared.py: sd_model (a property there)
config_filename = "config.json"
OptionInfo = options.OptionInfo  # mirrors modules/shared.py: OptionInfo
options_section = options.options_section  # mirrors modules/shared.py: options_section
total_tqdm = shared_total_tqdm.TotalTQDM()  # mirrors modules/shared_init.py: shared.total_tqdm
