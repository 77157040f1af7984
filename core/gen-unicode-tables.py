#!/usr/bin/env python3
"""Regenerates the tables in gc-unicode.c from Python 3's unicodedata and html modules.

    python3 core/gen-unicode-tables.py core/gc-unicode.c

Only the text between the BEGIN/END GENERATED TABLES markers is replaced; the lookup code
around it is written by hand. The tables follow what the CLIP tokenizer's reference
(OpenAI's simple_tokenizer.py: ftfy, html.unescape, str.lower and the `regex` module) does
with the Unicode data of the Python that runs this script, so the version is recorded in the
output. Properties Python does not expose directly (case-ignorable and cased, which drive
str.lower()'s final-sigma rule) are read off str.lower() itself.
"""

import html
import html.entities
import sys
import unicodedata

BEGIN = "/* BEGIN GENERATED TABLES"
END = "/* END GENERATED TABLES */"

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
SIGMA = 0x3A3


def code_points():
    """Every scalar value; surrogates cannot come out of valid UTF-8."""
    return (c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def ranges(predicate):
    out = []
    for c in code_points():
        if predicate(c):
            if out and out[-1][1] == c - 1:
                out[-1][1] = c
            else:
                out.append([c, c])
    return out


def category(c):
    return unicodedata.category(chr(c))


def is_white_space(c):
    # The `regex` module's \s is the White_Space property: str.isspace() without the four
    # information separators U+001C..U+001F, which Python also counts as space.
    return chr(c).isspace() and not 0x1C <= c <= 0x1F


def final_sigma_classes():
    """Case-ignorable code points, and cased ones that are not case-ignorable.

    "XΣ" lowers to "xς" exactly when X is cased and not case-ignorable; "AXΣ" does when X is
    either (A is cased, and a case-ignorable X is skipped over)."""
    ignorable, cased = set(), set()
    for c in code_points():
        x = chr(c)
        if (x + "\u03a3").lower()[-1] == "\u03c2":
            cased.add(c)
        elif ("A" + x + "\u03a3").lower()[-1] == "\u03c2":
            ignorable.add(c)
    return ignorable, cased


def lower_runs():
    """Single code point lower-case mappings as runs of equal delta, stride 1 or 2.

    Runs never interleave (a stride-2 run only steps over unmapped code points), so a lookup
    needs to look at just the last run starting at or before a code point."""
    pairs = {}
    for c in code_points():
        if c == SIGMA:
            continue  # depends on context, handled in code
        lower = chr(c).lower()
        if len(lower) == 1 and ord(lower) != c:
            pairs[c] = ord(lower) - c
    runs, remaining = [], set(pairs)
    for first in sorted(pairs):
        if first not in remaining:
            continue
        delta = pairs[first]
        count, stride = 1, 1
        for step in (1, 2):
            n = 1
            while (first + n * step in remaining and pairs[first + n * step] == delta
                   and (step == 1 or first + n * step - 1 not in pairs)):
                n += 1
            if n > count:
                count, stride = n, step
        runs.append((first, count, stride, delta))
        remaining -= {first + k * stride for k in range(count)}
    assert len(runs) < 65536
    return runs


def lower_multi():
    out = []
    for c in code_points():
        lower = chr(c).lower()
        if len(lower) > 1:
            assert len(lower) == 2, hex(c)
            out.append((c, [ord(x) for x in lower]))
    return out


def combining_ranges():
    out = []
    for c in code_points():
        ccc = unicodedata.combining(chr(c))
        if ccc == 0:
            continue
        if out and out[-1][1] == c - 1 and out[-1][2] == ccc:
            out[-1][1] = c
        else:
            out.append([c, c, ccc])
    return out


def decompositions():
    """Full canonical decompositions (Hangul syllables are computed, not stored)."""
    out = []
    for c in code_points():
        if HANGUL_FIRST <= c <= HANGUL_LAST:
            continue
        mapping = unicodedata.decomposition(chr(c))
        if mapping and not mapping.startswith("<"):
            full = [ord(x) for x in unicodedata.normalize("NFD", chr(c))]
            assert 1 <= len(full) <= 4, hex(c)
            out.append((c, full))
    return out


def compositions():
    """Primary composites: two-code-point canonical mappings that NFC puts back together."""
    out = []
    for c in code_points():
        if HANGUL_FIRST <= c <= HANGUL_LAST:
            continue
        mapping = unicodedata.decomposition(chr(c))
        if not mapping or mapping.startswith("<"):
            continue
        parts = [int(p, 16) for p in mapping.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(c)) == chr(c):
            out.append((parts[0], parts[1], c))
    out.sort()
    # gc_unicode_nfc() passes text below U+0300 through untouched: nothing there combines.
    assert min(second for _, second, _ in out) >= 0x300
    assert all(unicodedata.normalize("NFC", chr(c)) == chr(c) and unicodedata.combining(chr(c)) == 0
               for c in range(0x300))
    return out


def width_forms():
    """ftfy's fix_character_width: NFKC of the halfwidth and fullwidth forms block."""
    out = []
    for c in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(c))
        if alt != chr(c):
            assert len(alt) <= 2
            out.append((c, [ord(x) for x in alt]))
    return out


def cp1252_c1():
    """What bytes 0x80..0x9F mean in Windows-1252; the five it leaves undefined stay as the
    C1 control of the same number (Python's html module and ftfy's sloppy codec agree)."""
    out = []
    for b in range(0x80, 0xA0):
        try:
            out.append(ord(bytes([b]).decode("cp1252")))
        except UnicodeDecodeError:
            out.append(b)
    assert all(html._invalid_charrefs[b] == chr(out[b - 0x80]) for b in range(0x80, 0xA0))
    return out


def html_entities():
    """HTML 4's named references (html.entities.name2codepoint) plus &apos;, in every spelling
    HTML5 accepts for them: with ';', and the legacy forms without it (&amp, &AMP)."""
    names = set(html.entities.name2codepoint) | {"apos", "AMP", "COPY", "GT", "LT", "QUOT", "REG"}
    out = []
    for name, text in html.entities.html5.items():
        if name.rstrip(";") in names:
            assert len(text) == 1
            out.append((name, ord(text)))
    out.sort(key=lambda e: e[0].encode("ascii"))
    return out


def c_ranges(name, items, comment):
    lines = [f"/* {comment} ({len(items)} ranges) */", f"static const cp_range {name}[] = {{"]
    row = []
    for first, last in items:
        row.append(f"{{ 0x{first:04X}, 0x{last:04X} }},")
        if len(row) == 5:
            lines.append("  " + " ".join(row))
            row = []
    if row:
        lines.append("  " + " ".join(row))
    lines.append("};")
    return "\n".join(lines)


def c_rows(header, items, per_line):
    lines = [header]
    for i in range(0, len(items), per_line):
        lines.append("  " + " ".join(items[i:i + per_line]))
    lines.append("};")
    return "\n".join(lines)


def generate():
    ignorable, cased = final_sigma_classes()
    decomp = decompositions()
    pool, decomp_rows = [], []
    for c, full in decomp:
        decomp_rows.append(f"{{ 0x{c:04X}, {len(pool)}, {len(full)} }},")
        pool.extend(full)
    assert len(pool) < 65536
    parts = [
        f"{BEGIN} — core/gen-unicode-tables.py, Python {sys.version.split()[0]}, "
        f"Unicode {unicodedata.unidata_version}; do not edit by hand. */",
        "",
        f'const char gc_unicode_version[] = "{unicodedata.unidata_version}";',
        "",
        c_ranges("letter_ranges", ranges(lambda c: category(c).startswith("L")),
                 "\\p{L}: general categories Lu Ll Lt Lm Lo"),
        "",
        c_ranges("number_ranges", ranges(lambda c: category(c).startswith("N")),
                 "\\p{N}: general categories Nd Nl No"),
        "",
        c_ranges("decimal_ranges", ranges(lambda c: category(c) == "Nd"),
                 "Nd, what \\d matches in Python's re module"),
        "",
        c_ranges("space_ranges", ranges(is_white_space), "White_Space, the regex module's \\s"),
        "",
        c_ranges("case_ignorable_ranges", ranges(lambda c: c in ignorable),
                 "Case_Ignorable, as str.lower()'s final-sigma rule sees it"),
        "",
        c_ranges("cased_ranges", ranges(lambda c: c in cased),
                 "Cased and not Case_Ignorable"),
        "",
        c_rows(f"/* str.lower() of one code point: first, count, stride, delta "
               f"({len(lower_runs_list := lower_runs())} runs) */\n"
               "static const lower_run lower_runs[] = {",
               [f"{{ 0x{f:04X}, {n}, {s}, {d} }}," for f, n, s, d in lower_runs_list], 4),
        "",
        c_rows("/* str.lower() mappings longer than one code point */\n"
               "static const wide_mapping lower_multi[] = {",
               [f"{{ 0x{c:04X}, {{ 0x{m[0]:04X}, 0x{m[1]:04X} }} }}," for c, m in lower_multi()], 2),
        "",
        c_rows(f"/* Canonical combining classes other than 0 ({len(ccc := combining_ranges())} ranges) */\n"
               "static const ccc_range ccc_ranges[] = {",
               [f"{{ 0x{f:04X}, 0x{l:04X}, {v} }}," for f, l, v in ccc], 4),
        "",
        c_rows(f"/* Full canonical decompositions, into decomposition_pool "
               f"({len(decomp)} code points) */\n"
               "static const decomposition decompositions[] = {", decomp_rows, 4),
        "",
        c_rows("static const uint32_t decomposition_pool[] = {",
               [f"0x{c:04X}," for c in pool], 8),
        "",
        c_rows(f"/* Primary composites by (first, second) ({len(comp := compositions())} pairs) */\n"
               "static const composition compositions[] = {",
               [f"{{ 0x{a:04X}, 0x{b:04X}, 0x{c:04X} }}," for a, b, c in comp], 3),
        "",
        c_rows("/* NFKC of the halfwidth and fullwidth forms U+FF01..U+FFEF */\n"
               "static const wide_mapping width_forms[] = {",
               [f"{{ 0x{c:04X}, {{ 0x{m[0]:04X}, 0x{m[1] if len(m) > 1 else 0:04X} }} }},"
                for c, m in width_forms()], 2),
        "",
        c_rows("/* Windows-1252 meaning of bytes 0x80..0x9F */\n"
               "static const uint16_t cp1252_c1[32] = {",
               [f"0x{c:04X}," for c in cp1252_c1()], 8),
        "",
        c_rows(f"/* Named character references, sorted by name ({len(ent := html_entities())}) */\n"
               "static const html_entity html_entities[] = {",
               [f'{{ "{n}", 0x{c:04X} }},' for n, c in ent], 4),
        "",
        END,
    ]
    return "\n".join(parts)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        source = f.read()
    begin = source.index(BEGIN)
    end = source.index(END) + len(END)
    with open(path, "w", encoding="utf-8") as f:
        f.write(source[:begin] + generate() + source[end:])


if __name__ == "__main__":
    main()
