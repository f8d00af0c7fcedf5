"""Text, with no torch: bytes to text, the one preparation pipeline, the one rendering rule,
tokenizers, the chinese-poetry corpus builder and `corpus inspect`."""
