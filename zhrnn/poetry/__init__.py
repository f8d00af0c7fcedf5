"""Poetry rules, with no torch: poem forms as templates and the 词牌 table (forms.py), 平仄 and the
平水韵 / 中华新韵 rhyme groups (tones.py), the modern rhyme table of 十三辙 and 中华新韵 (rhyme.py), and
the 格律 of 近体诗 with its checker, `zhrnn check` (meter.py). generation/ turns these rules into
masks over a vocabulary."""
