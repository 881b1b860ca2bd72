"""Pictures of attention: line view, heatmap, grid, saving, and the many-head aggregates.

Drawings are checked by machine: saved as SVG and parsed, lines and cells found by their ids.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest
import torch

from selfattention.inspection.aggregate import mean_over_heads, rollout
from selfattention.inspection.plots import grid, heatmap, line_view, save_figure

SVG = "{http://www.w3.org/2000/svg}"
QUERIES = ["The", "dog", "ate", "it"]
KEYS = ["The", "dog", "ate", "it"]
# Each row's strongest key: 0 -> 1, 1 -> 2, 2 -> 0, 3 -> 1; the 0.004 entries fall below min_weight 0.01.
WEIGHTS = torch.tensor(
    [
        [0.10, 0.80, 0.096, 0.004],
        [0.05, 0.05, 0.85, 0.05],
        [0.60, 0.20, 0.196, 0.004],
        [0.20, 0.70, 0.004, 0.096],
    ]
)
STRONGEST = {0: 1, 1: 2, 2: 0, 3: 1}


def svg_tree(figure, path: Path) -> ET.Element:
    # Text as <text> elements rather than glyph paths, so annotations can be read back.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        save_figure(figure, path)
    return ET.parse(path).getroot()


def by_id(root: ET.Element, prefix: str) -> dict[str, ET.Element]:
    return {el.get("id"): el for el in root.iter() if (el.get("id") or "").startswith(prefix)}


def line_style(group: ET.Element) -> tuple[float, float]:
    """(stroke width, stroke opacity) of the path inside a ``line-i-j`` group."""
    paths = group.findall(f"{SVG}path")
    assert len(paths) == 1
    style = dict(
        (key.strip(), value.strip())
        for key, value in (item.split(":", 1) for item in paths[0].get("style", "").split(";") if ":" in item)
    )
    return float(style["stroke-width"]), float(style.get("stroke-opacity", "1"))


def pair(line_id: str) -> tuple[int, int]:
    _, i, j = line_id.split("-")
    return int(i), int(j)


def test_line_view_strongest_pair_is_thickest_and_most_opaque(tmp_path: Path) -> None:
    root = svg_tree(line_view(WEIGHTS, QUERIES, KEYS, title="all rows", min_weight=0.01), tmp_path / "lines.svg")
    lines = by_id(root, "line-")
    expected = {f"line-{i}-{j}" for i in range(4) for j in range(4) if WEIGHTS[i, j] >= 0.01}
    assert set(lines) == expected  # the three 0.004 pairs are not drawn
    styles = {pair(name): line_style(group) for name, group in lines.items()}
    # Across the whole drawing, the strongest pair (1, 2) is thickest and most opaque.
    assert max(styles, key=lambda p: styles[p][0]) == (1, 2)
    assert max(styles, key=lambda p: styles[p][1]) == (1, 2)
    # Within each row, the strongest key's line is strictly thickest and most opaque.
    for i, j_best in STRONGEST.items():
        row = {j: styles[(i, j)] for (r, j) in styles if r == i}
        for j, (width, opacity) in row.items():
            if j != j_best:
                assert width < row[j_best][0], (i, j)
                assert opacity < row[j_best][1], (i, j)
    # Thickness follows the weight: order of widths equals order of weights.
    ordered = sorted(styles, key=lambda p: float(WEIGHTS[p]))
    widths = [styles[p][0] for p in ordered]
    assert widths == sorted(widths)


def test_line_view_min_weight_drops_faint_lines(tmp_path: Path) -> None:
    root = svg_tree(line_view(WEIGHTS, QUERIES, KEYS, min_weight=0.5), tmp_path / "strong.svg")
    assert set(by_id(root, "line-")) == {"line-0-1", "line-1-2", "line-2-0", "line-3-1"}


def test_line_view_highlight_draws_only_that_row(tmp_path: Path) -> None:
    root = svg_tree(line_view(WEIGHTS, QUERIES, KEYS, highlight=3), tmp_path / "it.svg")
    lines = by_id(root, "line-")
    assert lines and {pair(name)[0] for name in lines} == {3}
    assert set(lines) == {"line-3-0", "line-3-1", "line-3-3"}  # 3-2 is below min_weight
    styles = {pair(name)[1]: line_style(group) for name, group in lines.items()}
    assert max(styles, key=lambda j: styles[j][0]) == 1
    # Thickness and opacity follow the weight itself, as the legend and the web page say.
    assert styles[1][1] == pytest.approx(0.1 + 0.9 * float(WEIGHTS[3, 1]))
    text = ET.tostring(root, encoding="unicode")
    assert "#d1495b" in text  # the highlight colour


def test_heatmap_cells_carry_ids_and_percentages(tmp_path: Path) -> None:
    root = svg_tree(heatmap(WEIGHTS, QUERIES, KEYS, title="one head"), tmp_path / "heat.svg")
    cells = by_id(root, "cell-")
    assert set(cells) == {f"cell-{i}-{j}" for i in range(4) for j in range(4)}
    for name, group in cells.items():
        i, j = pair(name)
        text = "".join(group.itertext()).strip()
        assert text == f"{100 * float(WEIGHTS[i, j]):.0f}", name
    assert "".join(cells["cell-1-2"].itertext()).strip() == "85"
    assert by_id(root, "heatmap")  # the image itself


def test_heatmap_large_matrix_is_not_annotated(tmp_path: Path) -> None:
    big = torch.softmax(torch.randn(25, 25, generator=torch.Generator().manual_seed(0)), dim=-1)
    labels = [f"t{i}" for i in range(25)]
    root = svg_tree(heatmap(big, labels, labels), tmp_path / "big.svg")
    assert not by_id(root, "cell-")


def grid_weights(layers: int = 2, heads: int = 3, size: int = 4) -> torch.Tensor:
    scores = torch.randn(layers, heads, size, size, generator=torch.Generator().manual_seed(1))
    return torch.softmax(scores, dim=-1)


def test_grid_draws_every_layer_and_head(tmp_path: Path) -> None:
    figure = grid(grid_weights(), QUERIES, KEYS, title="every head")
    assert len(figure.axes) == 2 * 3 + 1  # and one colour bar for all
    assert figure.axes[-1].get_ylabel() == "attention weight"
    titles = [ax.get_title() for ax in figure.axes[:-1]]
    assert titles == [f"layer {layer}, head {head}" for layer in range(2) for head in range(3)]
    path = tmp_path / "grid.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        save_figure(figure, path)
    text = "".join(ET.parse(path).getroot().itertext())
    assert len(re.findall(r"layer \d, head \d", text)) == 6


def test_grid_honours_layer_and_head_filters() -> None:
    figure = grid(grid_weights(), QUERIES, KEYS, layers=[1], heads=[0, 2])
    assert [ax.get_title() for ax in figure.axes[:-1]] == ["layer 1, head 0", "layer 1, head 2"]
    plt.close(figure)


def test_grid_cells_show_the_right_head() -> None:
    weights = grid_weights()
    figure = grid(weights, QUERIES, KEYS, layers=[1], heads=[2])
    ax, _colour_bar = figure.axes
    (image,) = ax.get_images()
    assert torch.allclose(torch.as_tensor(image.get_array()).float(), weights[1, 2])
    plt.close(figure)


def test_save_png_is_a_decodable_image_of_the_right_shape(tmp_path: Path) -> None:
    figure = plt.figure(figsize=(6, 2))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.imshow(WEIGHTS.numpy(), aspect="auto")
    ax.axis("off")
    out = save_figure(figure, tmp_path / "wide.png")
    assert out == tmp_path / "wide.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(out)
    height, width = image.shape[:2]
    # 6 x 2 inches plus the tight-bbox padding of 0.1 inch each side.
    assert width / height == pytest.approx(6.2 / 2.2, rel=0.02)


def test_save_png_of_line_view_is_taller_than_wide_for_a_long_sentence(tmp_path: Path) -> None:
    labels = [f"word{i}" for i in range(30)]
    weights = torch.softmax(torch.randn(30, 30, generator=torch.Generator().manual_seed(2)), dim=-1)
    out = save_figure(line_view(weights, labels, labels, highlight=0), tmp_path / "long.PNG")  # suffix case-blind
    image = mpimg.imread(out)
    assert image.shape[0] > image.shape[1]


def test_save_svg_parses_as_svg(tmp_path: Path) -> None:
    out = save_figure(heatmap(WEIGHTS, QUERIES, KEYS), tmp_path / "h.svg")
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"


def test_save_html_is_a_standalone_page_with_escaped_text(tmp_path: Path) -> None:
    title = "<script>alert('x')</script> & co"
    caption = 'caption <b>bold</b> & "quoted"'
    out = save_figure(heatmap(WEIGHTS, QUERIES, KEYS), tmp_path / "page.html", title=title, caption=caption)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1
    assert "</svg>" in page
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page  # the SVG is inlined, not a document
    # Nothing the user wrote is markup.
    assert "<script" not in page.lower()
    assert "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "caption &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in page
    # No network: every link or source is on the page (#id) or inline (data:).
    for target in re.findall(r"(?:href|src)\s*=\s*[\"']([^\"']*)", page):
        assert target.startswith(("#", "data:")), target
    assert "url(http" not in page and "@import" not in page and "<link" not in page
    # The only web addresses left are XML namespace names and matplotlib's RDF metadata (never fetched).
    rest = re.sub(r"xmlns(?::\w+)?=\"[^\"]*\"", "", page)
    rest = re.sub(r"<metadata>.*?</metadata>", "", rest, flags=re.DOTALL)
    assert "http://" not in rest and "https://" not in rest


@pytest.mark.parametrize("name", ["picture.jpg", "picture.pdf", "picture"])
def test_save_unsupported_suffix_names_the_file(tmp_path: Path, name: str) -> None:
    figure = heatmap(WEIGHTS, QUERIES, KEYS)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / name))) as error:
        save_figure(figure, tmp_path / name)
    assert ".png" in str(error.value)
    assert not (tmp_path / name).exists()
    plt.close(figure)


# --- aggregates over heads and layers ---


def softmax_heads(heads: int, size: int, seed: int) -> torch.Tensor:
    return torch.softmax(torch.randn(heads, size, size, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_mean_over_heads_is_the_mean() -> None:
    weights = softmax_heads(4, 5, 0)
    assert mean_over_heads(weights).shape == (5, 5)
    assert torch.allclose(mean_over_heads(weights), sum(weights[h] for h in range(4)) / 4)
    batched = torch.stack([weights, softmax_heads(4, 5, 1)])  # (B, H, T, S)
    assert torch.allclose(mean_over_heads(batched)[1], softmax_heads(4, 5, 1).mean(dim=0))


def test_rollout_of_identity_attention_is_identity() -> None:
    eye = torch.eye(5).expand(3, 5, 5)
    assert torch.allclose(rollout([eye, eye, eye]), torch.eye(5))


def test_rollout_rows_sum_to_one() -> None:
    result = rollout([softmax_heads(2, 6, seed) for seed in range(4)])
    assert result.shape == (6, 6)
    assert torch.allclose(result.sum(dim=-1), torch.ones(6), atol=1e-6)
    assert (result >= 0).all()


def test_rollout_of_one_layer_is_half_mean_half_identity() -> None:
    weights = softmax_heads(3, 4, 5)
    mixed = 0.5 * weights.mean(dim=0) + 0.5 * torch.eye(4)
    expected = mixed / mixed.sum(dim=-1, keepdim=True)
    assert torch.allclose(rollout([weights]), expected, atol=1e-6)


def test_rollout_renormalises_rows_that_do_not_sum_to_one() -> None:
    weights = torch.full((1, 3, 3), 2.0)  # rows sum to 6: mixed rows must be divided back to 1
    mixed = 0.5 * torch.full((3, 3), 2.0) + 0.5 * torch.eye(3)
    expected = mixed / mixed.sum(dim=-1, keepdim=True)
    assert torch.allclose(rollout([weights]), expected)


def test_rollout_multiplies_layers_from_the_bottom_up() -> None:
    low, high = softmax_heads(2, 4, 6), softmax_heads(2, 4, 7)

    def mix(weights: torch.Tensor) -> torch.Tensor:
        mixed = 0.5 * weights.mean(dim=0) + 0.5 * torch.eye(4)
        return mixed / mixed.sum(dim=-1, keepdim=True)

    assert torch.allclose(rollout([low, high]), mix(high) @ mix(low), atol=1e-6)
    assert not torch.allclose(rollout([low, high]), mix(low) @ mix(high), atol=1e-4)


def test_rollout_needs_a_layer() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        rollout([])


def test_line_view_has_a_legend_of_three_thicknesses(tmp_path: Path) -> None:
    root = svg_tree(line_view(WEIGHTS, QUERIES, KEYS), tmp_path / "legend.svg")
    legend = by_id(root, "legend-")
    assert set(legend) == {"legend-0", "legend-1", "legend-2"}
    widths = [line_style(legend[f"legend-{k}"])[0] for k in range(3)]
    assert widths == sorted(widths) and widths[0] < widths[2]


def test_line_view_of_spread_attention_keeps_each_rows_strongest_line_only_when_faint() -> None:
    """Decoder-like rows spread over 30 keys: lines under 5 % are left out, but every row keeps one."""
    n = 30
    weights = torch.softmax(torch.randn(n, n, generator=torch.Generator().manual_seed(0)) * 0.5, dim=-1)
    labels = [f"w{i}" for i in range(n)]
    figure = line_view(weights, labels, labels)
    drawn = [line.get_gid() for line in figure.axes[0].lines if (line.get_gid() or "").startswith("line-")]
    assert len(drawn) < n * n // 4  # far fewer than every pair
    assert {int(gid.split("-")[1]) for gid in drawn} == set(range(n))  # every row keeps its strongest
    for gid in drawn:
        i, j = pair(gid)
        assert float(weights[i, j]) >= 0.05 or j == int(weights[i].argmax())
    plt.close(figure)


def test_long_sentences_get_smaller_labels_not_overlapping_ones() -> None:
    n = 40
    weights = torch.full((n, n), 1.0 / n)
    labels = [f"piece{i}" for i in range(n)]
    line_figure = line_view(weights, labels, labels)
    sizes = {text.get_fontsize() for text in line_figure.axes[0].texts if text.get_text() in labels}
    assert sizes and max(sizes) < 10
    height_per_row = line_figure.get_size_inches()[1] / n
    assert height_per_row * 72 >= 1.4 * max(sizes)  # each row has room for its label
    plt.close(line_figure)
    heat = heatmap(weights, labels, labels)
    assert {label.get_fontsize() for label in heat.axes[0].get_yticklabels()} == {6}
    plt.close(heat)
