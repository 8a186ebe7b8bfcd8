"""docs/erd.svg: an entity-relationship diagram drawn from a catalog read, in plain
SVG written here (no graphviz), so the same schema always gives the same bytes.

Layout: one panel per schema group (public with auth, then private, then
archive). Inside a panel, tables are placed in layers by foreign-key depth (a
table sits below every table it references), a layer wraps into several rows
when wide, and the order inside a row follows the referenced tables' positions
to keep edges short. Boxes list the key columns (primary and foreign key
columns). Foreign keys to the tenant root are drawn faint: almost every table
has one, and they would hide the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from .catalog import Catalog, Table

TENANT_ROOT = "public.companies"
BANDS: tuple[tuple[tuple[str, ...], ...], ...] = ((("public", "auth"),), (("private",), ("archive",)))
PANEL_TITLES = {("public", "auth"): "public and auth: tenant tables, reference tables, identities",
                ("private",): "private: backend-only tables",
                ("archive",): "archive: rows moved out of the live tables"}
COLOURS = {"public": "#2b6cb0", "auth": "#6b46c1", "private": "#b7791f", "archive": "#4a5568"}
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
CHAR_W = 7.3  # width of one 12px monospace character
BOLD_FACTOR = 1.12  # bold glyphs of the table name are wider
LINE_H = 17
HEAD_H = 24
PAD = 10
GAP_X = 46
GAP_Y = 70
MAX_PER_ROW = 6
MARGIN = 30
PANEL_TITLE_H = 34
PANEL_PAD = 16


@dataclass(frozen=True)
class Frame:
    title: str
    x: int
    y: int
    width: int
    height: int


@dataclass
class Box:
    table: Table
    lines: list[tuple[str, str]]  # (marker, column)
    extra: int  # columns not listed
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0

    @property
    def name(self) -> str:
        return self.table.qualified


def _box(t: Table) -> Box:
    pk = set(t.primary_key)
    fk = {c for k in t.foreign_keys for c in k.columns}
    lines = []
    for col in t.columns:
        if col.name in pk or col.name in fk:
            marker = " ".join(m for m, on in (("PK", col.name in pk), ("FK", col.name in fk)) if on)
            lines.append((marker, col.name))
    extra = len(t.columns) - len(lines)
    texts = [f"{m:<5} {c}" for m, c in lines] + ([f"+ {extra} more columns"] if extra else [])
    widest = max([len(s) for s in texts] + [len(t.qualified) * BOLD_FACTOR])
    width = widest * CHAR_W + 2 * PAD
    height = HEAD_H + LINE_H * (len(lines) + (1 if extra else 0)) + PAD
    return Box(t, lines, extra, round(max(width, 150.0)), height)


def _layers(tables: list[Table]) -> dict[str, int]:
    """Longest foreign-key path from a table nobody in the group references (cycles broken)."""
    inside = {t.qualified: t for t in tables}
    depth: dict[str, int] = {}

    def visit(name: str, stack: tuple[str, ...]) -> int:
        if name in depth:
            return depth[name]
        parents = sorted({k.references for k in inside[name].foreign_keys
                          if k.references in inside and k.references != name and k.references not in stack}
                         - {None})
        level = 1 + max((visit(p, (*stack, name)) for p in parents if p is not None), default=-1)
        depth[name] = level
        return level

    for name in sorted(inside):
        visit(name, ())
    return depth


def _rows_of(boxes: list[Box], placed: dict[str, Box]) -> list[list[Box]]:
    by_name = {b.name: b for b in boxes}
    depth = _layers([b.table for b in boxes])
    rows: list[list[Box]] = []
    for level in sorted(set(depth.values())):
        layer = [by_name[n] for n in sorted(n for n, d in depth.items() if d == level)]

        def pull(b: Box) -> tuple[float, str]:
            xs = [placed[k.references].x + placed[k.references].width / 2
                  for k in b.table.foreign_keys if k.references in placed and k.references != TENANT_ROOT]
            return (sum(xs) / len(xs) if xs else -1.0, b.name)

        layer.sort(key=pull)
        for start in range(0, len(layer), MAX_PER_ROW):
            rows.append(layer[start:start + MAX_PER_ROW])
            for b in rows[-1]:  # provisional x so the next layer can follow it
                placed[b.name] = b
                b.x = pull(b)[0]
    return rows


Panel = tuple[tuple[str, ...], list[list[Box]]]


def _row_width(row: list[Box]) -> float:
    return sum(b.width for b in row) + GAP_X * (len(row) - 1)


def _place(bands: list[list[Panel]]) -> tuple[float, float, list[Frame]]:
    """Panels of a band side by side, bands top to bottom; rows centred in their panel."""
    def panel_width(rows: list[list[Box]]) -> float:
        return max(_row_width(row) for row in rows) + 2 * PANEL_PAD

    widths = [sum(panel_width(rows) for _, rows in band) + GAP_X * (len(band) - 1) for band in bands]
    width = max(widths, default=0) + 2 * MARGIN
    frames: list[Frame] = []
    y = float(MARGIN)
    for band, band_w in zip(bands, widths, strict=True):
        x0 = (width - band_w) / 2
        bottom: float = y
        for key, rows in band:
            pw = panel_width(rows)
            row_y = y + PANEL_TITLE_H
            for row in rows:
                x = x0 + (pw - _row_width(row)) / 2
                for b in row:
                    b.x, b.y = round(x), round(row_y)
                    x += b.width + GAP_X
                row_y += max(b.height for b in row) + GAP_Y
            h = row_y - GAP_Y + PANEL_PAD - y
            frames.append(Frame(PANEL_TITLES.get(key, ", ".join(key)), round(x0), round(y), round(pw), round(h)))
            bottom = max(bottom, y + h)
            x0 += pw + GAP_X
        y = bottom + GAP_Y / 2
    return width, y, frames


def _panel(schema: str) -> tuple[str, ...]:
    return next((key for band in BANDS for key in band if schema in key), (schema,))


Point = tuple[float, float]


def _route(start: Point, end: Point, rows: list[list[Box]], used: dict[tuple[int, int], int]) -> list[Point]:
    """Points from start to end that cross each row of boxes in between through a gap
    (the one nearest the straight line), spreading edges that share a gap."""
    y1, (x2, y2) = start[1], end
    lo, hi = min(y1, y2), max(y1, y2)
    spans = [(min(b.y for b in r), max(b.y + b.height for b in r), r) for r in rows]
    between = sorted((s for s in spans if s[0] > lo and s[1] < hi), key=lambda s: s[0], reverse=y2 < y1)
    points = [start]
    for top, bottom, row in between:
        ordered = sorted(row, key=lambda b: b.x)
        gaps = [ordered[0].x - GAP_X / 2] + [b.x + b.width + GAP_X / 2 for b in ordered]
        cx, cy = points[-1]
        want = cx + (x2 - cx) * ((top + bottom) / 2 - cy) / (y2 - cy)
        gap = min(range(len(gaps)), key=lambda i: (abs(gaps[i] - want), i))
        k = used.get((int(top), gap), 0)
        used[(int(top), gap)] = k + 1
        shift = min(GAP_X / 2 - 4, 5.0 * ((k + 1) // 2)) * (1 if k % 2 else -1)
        gx = gaps[gap] + shift
        points += [(gx, bottom + 8), (gx, top - 8)] if y2 < y1 else [(gx, top - 8), (gx, bottom + 8)]
    points.append(end)
    return points


def _smooth(points: list[Point]) -> str:
    """A path through the points: vertical lines where x stays, S-curves with vertical ends elsewhere."""
    (x, y), rest = points[0], points[1:]
    d = f"M{x:.0f},{y:.0f}"
    for nx, ny in rest:
        if abs(nx - x) < 0.5:
            d += f" L{nx:.0f},{ny:.0f}"
        else:
            mid = (y + ny) / 2
            d += f" C{x:.0f},{mid:.0f} {nx:.0f},{mid:.0f} {nx:.0f},{ny:.0f}"
        x, y = nx, ny
    return d


def _edge_paths(boxes: dict[str, Box], rows: list[list[Box]]) -> list[str]:
    edges = sorted({(b.name, k.references) for b in boxes.values() for k in b.table.foreign_keys
                    if k.references in boxes and k.references is not None
                    and (k.references != TENANT_ROOT or _panel(b.table.schema) == _panel("public"))})
    # spread attachment points along each box side, ordered by where the other end is
    outgoing: dict[str, list[tuple[str, str]]] = {}
    incoming: dict[str, list[tuple[str, str]]] = {}
    for child, parent in edges:
        if child != parent:
            outgoing.setdefault(child, []).append((child, parent))
            incoming.setdefault(parent, []).append((child, parent))

    def centre(name: str) -> float:
        return boxes[name].x + boxes[name].width / 2

    def spots(box: Box, ends: list[tuple[str, str]], other: int) -> dict[tuple[str, str], float]:
        ordered = sorted(ends, key=lambda e: (centre(e[other]), e))
        step = box.width / (len(ordered) + 1)
        return {e: box.x + step * (i + 1) for i, e in enumerate(ordered)}

    out_x: dict[tuple[str, str], float] = {}
    in_x: dict[tuple[str, str], float] = {}
    for name, ends in outgoing.items():
        out_x.update(spots(boxes[name], ends, 1))
    for name, ends in incoming.items():
        in_x.update(spots(boxes[name], ends, 0))

    faint, strong = [], []
    used: dict[tuple[int, int], int] = {}
    for child, parent in edges:
        c, p = boxes[child], boxes[parent]
        if child == parent:
            x, y = c.x + c.width, c.y + HEAD_H / 2
            d = f"M{x:.0f},{y:.0f} c30,0 30,24 0,24"
        else:
            x1 = out_x[(child, parent)]
            x2 = in_x[(child, parent)]
            y1, y2 = (c.y, p.y + p.height) if p.y < c.y else (c.y + c.height, p.y)
            d = _smooth(_route((x1, y1), (x2, y2), rows, used) if parent != TENANT_ROOT else [(x1, y1), (x2, y2)])
        if parent == TENANT_ROOT:
            faint.append(f'<path class="tenant" d="{d}"/>')
        else:
            strong.append(f'<path class="fk" d="{d}" stroke="{COLOURS.get(c.table.schema, "#333")}"/>')
    return faint + strong


def _draw_box(b: Box) -> list[str]:
    colour = COLOURS.get(b.table.schema, "#333")
    out = [f'<g class="table" id="{escape(b.name)}">',
           f'<rect x="{b.x:.0f}" y="{b.y:.0f}" width="{b.width:.0f}" height="{b.height:.0f}" rx="4" '
           f'fill="#ffffff" stroke="{colour}" stroke-width="1.5"/>',
           f'<path d="M{b.x:.0f},{b.y + 4:.0f} a4,4 0 0 1 4,-4 h{b.width - 8:.0f} a4,4 0 0 1 4,4 '
           f'v{HEAD_H - 4:.0f} h-{b.width:.0f} z" fill="{colour}"/>',
           f'<text x="{b.x + PAD:.0f}" y="{b.y + 16:.0f}" class="head">{escape(b.name)}</text>']
    y = b.y + HEAD_H + 13
    for marker, column in b.lines:
        out.append(f'<text x="{b.x + PAD:.0f}" y="{y:.0f}"><tspan class="key">{marker:<5}</tspan> '
                   f'{escape(column)}</text>')
        y += LINE_H
    if b.extra:
        out.append(f'<text x="{b.x + PAD:.0f}" y="{y:.0f}" class="more">+ {b.extra} more columns</text>')
    out.append("</g>")
    return out


def render_erd(catalog: Catalog, header: str) -> str:
    tables = {t.qualified: t for t in catalog.tables()}
    placed: dict[str, Box] = {}
    bands: list[list[Panel]] = []
    for band in BANDS:
        panels: list[Panel] = []
        for key in band:
            group = [_box(t) for _, t in sorted(tables.items()) if t.schema in key]
            if group:
                panels.append((key, _rows_of(group, placed)))
        if panels:
            bands.append(panels)
    width, height, frames = _place(bands)
    boxes = {b.name: b for band in bands for _, rows in band for row in rows for b in row}
    legend_y = height
    height += 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}" font-size="12">',
           f"<desc>{escape(header)}</desc>",
           "<style>text{fill:#1a202c;white-space:pre}.head{fill:#ffffff;font-weight:bold}"
           ".key{fill:#718096}.more{fill:#a0aec0;font-style:italic}.panel{fill:#4a5568;font-size:14px;"
           "font-weight:bold}path.fk{fill:none;stroke-width:1.4;opacity:0.8;marker-end:url(#arrow)}"
           "path.tenant{fill:none;stroke:#cbd5e0;stroke-width:1;stroke-dasharray:4 3}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4a5568"/></marker></defs>',
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>']
    for f in frames:
        out.append(f'<rect x="{f.x}" y="{f.y}" width="{f.width}" height="{f.height}" '
                   'rx="8" fill="#f7fafc" stroke="#e2e8f0"/>')
        out.append(f'<text x="{f.x + PANEL_PAD}" y="{f.y + 22}" class="panel">{escape(f.title)}</text>')
    out += _edge_paths(boxes, [row for band in bands for _, rows in band for row in rows])
    for name in sorted(boxes):
        out += _draw_box(boxes[name])
    out.append(f'<text x="{MARGIN:.0f}" y="{legend_y + 10:.0f}">PK primary key column, FK foreign key column; '
               f'arrows point at the referenced table; dashed grey: foreign key to {TENANT_ROOT} '
               '(the tenant root; not drawn from private and archive tables).</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
