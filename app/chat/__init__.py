"""Pure core: conversations, rendering under a dialect, token records and labels. No web imports."""
