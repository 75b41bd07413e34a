from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sd_sweep.core.prompts import (
    RE_EXTRA_NET,
    has_network_tag,
    network_tags,
    prompt_matrix,
    search_replace,
    set_network_weight,
)


def builtin_prompt_matrix(original_prompt: str, put_at_start: bool, variations_delimiter: str) -> list[str]:
    """Transcription of ``Script.run`` in scripts/prompt_matrix.py (v1.10.1)."""
    delimiter = ", " if variations_delimiter == "comma" else " "
    all_prompts = []
    prompt_matrix_parts = original_prompt.split("|")
    combination_count = 2 ** (len(prompt_matrix_parts) - 1)
    for combination_num in range(combination_count):
        selected_prompts = [
            text.strip().strip(",") for n, text in enumerate(prompt_matrix_parts[1:]) if combination_num & (1 << n)
        ]
        if put_at_start:
            selected_prompts = selected_prompts + [prompt_matrix_parts[0]]  # noqa: RUF005 - verbatim
        else:
            selected_prompts = [prompt_matrix_parts[0]] + selected_prompts  # noqa: RUF005 - verbatim
        all_prompts.append(delimiter.join(selected_prompts))
    return all_prompts


# ---- prompt matrix ------------------------------------------------------------------------------


def test_matrix_order_and_joining() -> None:
    assert prompt_matrix("a cat|in a hat|blue") == [
        "a cat",
        "a cat, in a hat",
        "a cat, blue",
        "a cat, in a hat, blue",
    ]


def test_matrix_space_delimiter() -> None:
    assert prompt_matrix("a cat|in a hat|blue", delimiter="space") == [
        "a cat",
        "a cat in a hat",
        "a cat blue",
        "a cat in a hat blue",
    ]


def test_matrix_at_start_puts_the_fixed_part_last() -> None:
    assert prompt_matrix("a cat|in a hat|blue", at_start=True) == [
        "a cat",
        "in a hat, a cat",
        "blue, a cat",
        "in a hat, blue, a cat",
    ]


def test_matrix_strips_like_the_builtin() -> None:
    # The fixed part is kept verbatim; optional parts lose whitespace, then commas (not the spaces after them).
    assert prompt_matrix("a cat, | , in a hat ,|blue,") == [
        "a cat, ",
        "a cat, ,  in a hat ",
        "a cat, , blue",
        "a cat, ,  in a hat , blue",
    ]
    assert prompt_matrix("x||") == ["x", "x, ", "x, ", "x, , "]


def test_matrix_without_pipes() -> None:
    assert prompt_matrix("a cat") == ["a cat"]
    assert prompt_matrix("") == [""]


def test_matrix_errors() -> None:
    with pytest.raises(ValueError, match="delimiter"):
        prompt_matrix("a|b", delimiter="tab")
    with pytest.raises(ValueError, match="too many"):
        prompt_matrix("a" + "|b" * 17)
    assert len(prompt_matrix("a" + "|b" * 16)) == 2**16


@given(
    parts=st.lists(st.text(alphabet=st.sampled_from(list("ab ,\t<>:")), max_size=6), min_size=1, max_size=8),
    at_start=st.booleans(),
    delimiter=st.sampled_from(["comma", "space"]),
)
def test_matrix_matches_builtin_with_2_to_the_n_minus_1_prompts(
    parts: list[str], at_start: bool, delimiter: str
) -> None:
    prompt = "|".join(parts)
    result = prompt_matrix(prompt, at_start=at_start, delimiter=delimiter)
    assert result == builtin_prompt_matrix(prompt, at_start, delimiter)
    assert len(result) == 2 ** (len(parts) - 1)


@given(prompt=st.text(max_size=80), at_start=st.booleans(), delimiter=st.text(max_size=6))
def test_matrix_raises_only_value_error(prompt: str, at_start: bool, delimiter: str) -> None:
    try:
        result = prompt_matrix(prompt, at_start=at_start, delimiter=delimiter)
    except ValueError:
        return
    assert len(result) == 2 ** prompt.count("|")


# ---- search / replace ---------------------------------------------------------------------------


def test_search_replace_is_plain_case_sensitive_replace() -> None:
    assert search_replace("a cat, a CAT, cats", "cat", "dog") == "a dog, a CAT, dogs"
    assert search_replace("a cat", "bird", "dog") == "a cat"
    assert search_replace("(cat:1.2)", "cat:1.2", "cat:0.8") == "(cat:0.8)"
    assert search_replace("ab", "", "-") == "-a-b-"


@given(text=st.text(max_size=40), search=st.text(max_size=5), replacement=st.text(max_size=5))
def test_search_replace_matches_str_replace(text: str, search: str, replacement: str) -> None:
    assert search_replace(text, search, replacement) == text.replace(search, replacement)


# ---- extra-network tags -------------------------------------------------------------------------


def test_extra_network_regex_is_the_builtin_one() -> None:
    assert RE_EXTRA_NET.pattern == r"<(\w+):([^>]+)>"


@pytest.mark.parametrize(
    ("prompt", "weight", "expected"),
    [
        ("a <lora:foo:1> <lora:foobar:0.8>", 0.5, "a <lora:foo:0.5> <lora:foobar:0.8>"),
        ("a <lora:foo> b", 0.5, "a <lora:foo:0.5> b"),
        ("<lora:foo:1:0.3>", 0.7, "<lora:foo:0.7:0.3>"),
        ("<lora:foo:1:0.3:dyn=4>", 0.7, "<lora:foo:0.7:0.3:dyn=4>"),
        ("<lora:foo:te=0.8>", 0.7, "<lora:foo:0.7:te=0.8>"),
        ("<lora:foo:te=0.8:1>", 0.7, "<lora:foo:te=0.8:0.7>"),
        ("<lora:foo:1> and <lora:foo:2>", 1.0, "<lora:foo:1> and <lora:foo:1>"),
        ("1girl, <lora:foo:1>, 2 cats, (red:1.2)", 0.25, "1girl, <lora:foo:0.25>, 2 cats, (red:1.2)"),
        ("<hypernet:foo:1> <lora:foo:1>", 0.5, "<hypernet:foo:1> <lora:foo:0.5>"),
        ("<LORA:foo:1> <lora:Foo:1> <lora:foo:1>", 2, "<LORA:foo:1> <lora:Foo:1> <lora:foo:2>"),
        ("<lora:foo:1>", "0.35", "<lora:foo:0.35>"),
        ("<lora:foo:1>", 0.1 + 0.2, "<lora:foo:0.3>"),
    ],
)
def test_set_network_weight(prompt: str, weight: float | str, expected: str) -> None:
    assert set_network_weight(prompt, "lora", "foo", weight) == expected


@pytest.mark.parametrize(
    ("prompt", "weight"),
    [
        ("a cat", 0.5),
        ("<lora:foobar:1>", 0.5),
        ("<lora:fo:1>", 0.5),
        ("<hypernet:foo:1>", 0.5),
        ("<lora:foo:1>", float("nan")),
        ("<lora:foo:1>", True),
        ("<lora:foo:1>", "0.5>"),
        ("<lora:foo:1>", "a:b"),
        ("<lora:foo:1>", ""),
        ("<lora:foo:1>", None),
    ],
)
def test_set_network_weight_errors(prompt: str, weight: object) -> None:
    with pytest.raises(ValueError, match=r"tag|weight"):
        set_network_weight(prompt, "lora", "foo", weight)  # type: ignore[arg-type]


def test_has_network_tag() -> None:
    prompt = "a <lora:foo:1> <lyco:bar> <lora:foo bar:0.5>"
    assert has_network_tag(prompt, "lora", "foo")
    assert has_network_tag(prompt, "lyco", "bar")
    assert has_network_tag(prompt, "lora", "foo bar")
    assert not has_network_tag(prompt, "lora", "bar")
    assert not has_network_tag(prompt, "lora", "fo")
    assert not has_network_tag("a cat", "lora", "foo")


def test_network_tags() -> None:
    assert network_tags("x <lora:b:1> y <lora:a:0.5>, <hypernet:h>") == ("hypernet:h", "lora:a:0.5", "lora:b:1")
    assert network_tags("<lora:a:1> <lora:a:1>") == ("lora:a:1", "lora:a:1")
    assert network_tags("a cat, (dog:1.2), <not a tag>") == ()
    assert network_tags("<lora:a:1>") != network_tags("<lora:a:0.5>")


tag_names = st.text(alphabet=st.sampled_from(list("abz_1")), min_size=1, max_size=4)
prompt_text = st.text(alphabet=st.sampled_from(list("ab <>:=,.0123lorahyp_ ")), max_size=60)


@given(
    prompt=st.text(max_size=80),
    network=st.text(max_size=6),
    name=st.text(max_size=6),
    weight=st.one_of(st.floats(), st.integers(), st.text(max_size=5), st.booleans()),
)
@settings(max_examples=300)
def test_tag_functions_raise_only_value_error(prompt: str, network: str, name: str, weight: float | str) -> None:
    assert isinstance(network_tags(prompt), tuple)
    found = has_network_tag(prompt, network, name)
    try:
        result = set_network_weight(prompt, network, name, weight)
    except ValueError:
        return
    assert found
    assert isinstance(result, str)


@given(prompt=prompt_text, name=tag_names, weight=st.floats(min_value=-10, max_value=10))
@settings(max_examples=300)
def test_set_network_weight_touches_only_the_named_tags(prompt: str, name: str, weight: float) -> None:
    prompt = f"{prompt} <lora:{name}:1> {prompt}"
    assume(has_network_tag(prompt, "lora", name))
    result = set_network_weight(prompt, "lora", name, weight)
    assert has_network_tag(result, "lora", name)
    assert set_network_weight(result, "lora", name, weight) == result

    def others(text: str) -> list[str]:
        tags = RE_EXTRA_NET.finditer(text)
        return [m.group(0) for m in tags if not (m.group(1) == "lora" and m.group(2).split(":")[0] == name)]

    assert others(result) == others(prompt)
    assert RE_EXTRA_NET.sub("", result) == RE_EXTRA_NET.sub("", prompt)
    for m in RE_EXTRA_NET.finditer(result):
        if m.group(1) == "lora" and m.group(2).split(":")[0] == name:
            positional = [item for item in m.group(2).split(":")[1:] if len(item.split("=", 2)) != 2]
            assert float(positional[0]) == pytest.approx(weight, abs=1e-8)
