# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/options.py: OptionInfo, options_section, Options (get/set/add_option)."""

from __future__ import annotations


class OptionInfo:  # mirrors modules/options.py: OptionInfo
    def __init__(
        self,
        default=None,
        label="",
        component=None,
        component_args=None,
        onchange=None,
        section=None,
        refresh=None,
        comment_before="",
        comment_after="",
        infotext=None,
        restrict_api=False,
        category_id=None,
    ):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.category_id = category_id
        self.refresh = refresh
        self.infotext = infotext
        self.restrict_api = restrict_api
        self.do_not_save = False

    def info(self, info):
        self.label += f" ({info})"
        return self

    def needs_reload_ui(self):
        return self

    def needs_restart(self):
        return self


def options_section(section_identifier, options_dict):  # mirrors modules/options.py: options_section
    for v in options_dict.values():
        if len(section_identifier) == 2:
            v.section = section_identifier
        elif len(section_identifier) == 3:
            v.section = section_identifier[0:2]
            v.category_id = section_identifier[2]
    return options_dict


class Options:  # mirrors modules/options.py: Options
    def __init__(self, data_labels):
        object.__setattr__(self, "data_labels", dict(data_labels))
        object.__setattr__(self, "data", {k: v.default for k, v in data_labels.items() if not v.do_not_save})

    def __setattr__(self, key, value):
        if key in ("data", "data_labels"):
            return object.__setattr__(self, key, value)
        if key in self.data or key in self.data_labels:
            self.data[key] = value
            return None
        return object.__setattr__(self, key, value)

    def __getattr__(self, item):
        data = object.__getattribute__(self, "data")
        if item in data:
            return data[item]
        labels = object.__getattribute__(self, "data_labels")
        if item in labels:
            return labels[item].default
        raise AttributeError(item)

    def set(self, key, value, is_api=False, run_callbacks=True):  # mirrors modules/options.py: Options.set
        oldval = self.data.get(key, None)
        if oldval == value:
            return False
        info = self.data_labels[key]  # an unknown key raises KeyError there too
        if info.do_not_save:
            return False
        if is_api and info.restrict_api:
            return False
        self.data[key] = value
        if run_callbacks and info.onchange is not None:
            info.onchange()
        return True

    def get_default(self, key):  # mirrors modules/options.py: Options.get_default
        info = self.data_labels.get(key)
        return None if info is None else info.default

    def add_option(self, key, info):  # mirrors modules/options.py: Options.add_option
        self.data_labels[key] = info
        if key not in self.data and not info.do_not_save:
            self.data[key] = info.default

    def save(self, filename):
        self.saved = dict(self.data)
