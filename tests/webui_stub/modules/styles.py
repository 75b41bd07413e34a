# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/styles.py: PromptStyle, StyleDatabase (styles dict, apply to prompts)."""

from collections import namedtuple

PromptStyle = namedtuple("PromptStyle", ["name", "prompt", "negative_prompt", "path"])  # mirrors modules/styles.py


class StyleDatabase:  # mirrors modules/styles.py: StyleDatabase
    def __init__(self, styles=None):
        self.styles = dict(styles or {})

    def apply_styles_to_prompt(self, prompt, styles):
        for name in styles:
            style = self.styles.get(name)
            if style and style.prompt:
                prompt = (
                    style.prompt.replace("{prompt}", prompt)
                    if "{prompt}" in style.prompt
                    else f"{prompt}, {style.prompt}"
                )
        return prompt

    def apply_negative_styles_to_prompt(self, prompt, styles):
        for name in styles:
            style = self.styles.get(name)
            if style and style.negative_prompt:
                prompt = f"{prompt}, {style.negative_prompt}" if prompt else style.negative_prompt
        return prompt
