"""What a browser submits for a form on a served page, read from the HTML alone (no JavaScript).

Follows the HTML form-submission rules the editors rely on: fields in document order; a
disabled control, or any control inside a disabled fieldset, is not submitted; a checkbox only
when checked; a select its selected option (else its first); a textarea its text.

Example: submitted_fields(html, "playground") -> [("v", "1"), ("tokenizer", "qwen3"), ...]
"""

from __future__ import annotations

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.in_template = 0
        self.fieldsets: list[bool] = []  # disabled flag of each open fieldset
        self.fields: list[tuple[str, str]] = []
        self.select: tuple[str, list[tuple[str, bool]]] | None = None
        self.option: tuple[str | None, bool, list[str]] | None = None
        self.textarea: tuple[str, list[str]] | None = None

    def _off(self, attrs: dict[str, str | None]) -> bool:
        return "disabled" in attrs or any(self.fieldsets)

    def handle_starttag(self, tag: str, pairs: list[tuple[str, str | None]]) -> None:
        attrs = dict(pairs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "template":
            self.in_template += 1
        if self.in_template:
            return
        if tag == "fieldset":
            self.fieldsets.append("disabled" in attrs)
        elif tag == "input" and attrs.get("name") and not self._off(attrs):
            kind = attrs.get("type", "text")
            if kind not in ("checkbox", "radio") or "checked" in attrs:
                self.fields.append(
                    (str(attrs["name"]), attrs.get("value") or ("on" if kind == "checkbox" else ""))
                )
        elif tag == "textarea" and attrs.get("name") and not self._off(attrs):
            self.textarea = (str(attrs["name"]), [])
        elif tag == "select" and attrs.get("name") and not self._off(attrs):
            self.select = (str(attrs["name"]), [])
        elif tag == "option" and self.select is not None:
            self.option = (attrs.get("value"), "selected" in attrs, [])

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea[1].append(data)
        if self.option is not None:
            self.option[2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "template":
            self.in_template -= 1
        if self.in_template:
            return
        if tag == "form":
            self.inside = False
        elif tag == "fieldset" and self.fieldsets:
            self.fieldsets.pop()
        elif tag == "textarea" and self.textarea is not None:
            text = "".join(self.textarea[1])
            # The HTML parser drops nothing; a browser drops one leading newline of a textarea.
            self.fields.append((self.textarea[0], text[1:] if text.startswith("\n") else text))
            self.textarea = None
        elif tag == "option" and self.option is not None and self.select is not None:
            value, chosen, text = self.option
            self.select[1].append((value if value is not None else "".join(text), chosen))
            self.option = None
        elif tag == "select" and self.select is not None:
            name, options = self.select
            chosen = [v for v, on in options if on] or [v for v, _ in options[:1]]
            self.fields += [(name, chosen[-1])] if chosen else []
            self.select = None


def submitted_fields(html: str, form_id: str) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser would submit for form `form_id` of `html`."""
    reader = _FormReader(form_id)
    reader.feed(html)
    return reader.fields
