"""The WebUI prompt syntax as the embedded backend reads it (no torch needed)."""

from __future__ import annotations

import pytest

from sd_sweep.backends.diffusers.prompt_syntax import BREAK, Piece, extract_networks, parse_attention

W = 1.1
CASES = [
    ("normal text", [("normal text", 1.0)]),
    ("", [("", 1.0)]),
    ("a (b:1.5) c", [("a ", 1.0), ("b", 1.5), (" c", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", W), (" word", 1.0)]),
    ("((x))", [("x", W * W)]),
    ("[x]", [("x", 1 / W)]),
    ("[[x]]", [("x", 1 / W / W)]),
    ("(unbalanced", [("unbalanced", W)]),
    ("[unbalanced", [("unbalanced", 1 / W)]),
    ("unbalanced)", [("unbalanced)", 1.0)]),
    ("a] b", [("a] b", 1.0)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("back\\\\slash", [("back\\slash", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", W)]),
    ("(a:1.5) no weight:2)", [("a", 1.5), (" no weight:2)", 1.0)]),
    ("ratio 16:9", [("ratio 16:9", 1.0)]),
    ("(a (b:2) c)", [("a ", W), ("b", 2 * W), (" c", W)]),
    ("(x: 0.5 )", [("x", 0.5)]),
    ("(lighthouse:1.3), sea", [("lighthouse", 1.3), (", sea", 1.0)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.3 * W * W),
            (" ", W),
            ("on", W / W),
            (" a ", W),
            ("hill", 0.5 * W),
            (", sun, ", W),
            ("sky", W**4),
            (".", W),
        ],
    ),
]


def flat(pieces: list[Piece]) -> list[tuple[str, float]]:
    return [("BREAK", -1.0) if p.is_break else (p.text, p.weight) for p in pieces]


@pytest.mark.parametrize(("prompt", "expected"), CASES)
def test_attention_matches_the_webui_parser(prompt: str, expected: list[tuple[str, float]]) -> None:
    got = flat(parse_attention(prompt))
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_break_splits_and_keeps_the_weights() -> None:
    assert flat(parse_attention("a cat BREAK (a dog:1.2)")) == [("a cat", 1.0), ("BREAK", -1.0), ("a dog", 1.2)]
    assert parse_attention("(x BREAK y)") == [Piece("x", W), BREAK, Piece("y", W)]


def test_break_is_a_whole_word_in_capitals() -> None:
    assert flat(parse_attention("BREAKFAST break")) == [("BREAKFAST break", 1.0)]


def test_network_tags_are_removed_and_read() -> None:
    text, tags = extract_networks("a cat <lora:ink:0.8>, <lora:film>, <hypernet:h:te=0.5>")
    assert text == "a cat , , "
    assert [(t.network, t.name, t.weight) for t in tags] == [
        ("lora", "ink", 0.8),
        ("lora", "film", 1.0),
        ("hypernet", "h", 0.5),
    ]


def test_a_network_weight_that_is_no_number_is_named() -> None:
    with pytest.raises(ValueError, match=r"<lora:ink:strong>.*'strong'"):
        extract_networks("a <lora:ink:strong>")
