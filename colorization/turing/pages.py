"""The rater's pages, plain server-rendered HTML: the welcome page and the study page (whose trials are
run by static/rater.js). Nothing on them depends on a trial's content."""

from __future__ import annotations

import html

from colorization.turing.study import Protocol

__all__ = ["page", "study_page", "welcome_page"]

STYLE = """
[hidden]{display:none!important}
body{font-family:system-ui,sans-serif;margin:0;background:#808080;color:#111}
main{max-width:60em;margin:0 auto;padding:1.5em;background:#f4f4f4;min-height:100vh;box-sizing:border-box}
h1{font-size:1.5em} button{font-size:1.1em;padding:.5em 1.4em;margin:.3em;cursor:pointer}
#stage{height:min(60vh,540px);display:flex;align-items:center;justify-content:center;background:#808080}
#stimulus{display:flex;gap:24px} #stimulus img{width:min(40vw,256px);height:min(40vw,256px)}
#progress{color:#555} .right{color:#060} .wrong{color:#a00}
#feedback,#question,#ready,#done,#problem{text-align:center}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #bbb;padding:3px 9px;text-align:right}
th:first-child,td:first-child{text-align:left}
"""


def page(title: str, body: str) -> str:
    """A whole HTML page around `body`."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def welcome_page(protocol: Protocol, returning: bool) -> str:
    """What a rater reads first: the task, how long it takes, and the start (or continue) button."""
    seconds = protocol.display_ms / 1000
    how = "side by side" if protocol.layout == "side_by_side" else "one after the other (first, then second)"
    scored = protocol.trials + protocol.vigilance_trials
    action = (
        "<p><a href='/study'><button>Continue where you were</button></a></p>"
        if returning
        else "<form method='post' action='/start'><button type='submit' id='start'>Start</button></form>"
    )
    body = f"""
<h1>Real or fake colours?</h1>
<p>Each trial shows two photos {how} for {seconds:g} s. One of them is a real colour photo; the other was
colorized by a computer from a black-and-white version. After they disappear, click the one whose colours
you think are <b>fake</b>. Take your time to answer; only the photos are timed.</p>
<p>First {protocol.practice} practice trials tell you whether you were right. Then {scored} trials follow
without feedback. Some of them are easy on purpose: please stay attentive.</p>
<p>Keys: Space shows the next pair; ← or 1 picks the left (first) photo, → or 2 the right (second) one.</p>
{action}
"""
    return page("Colorization study", body)


def study_page() -> str:
    """The trial page: its elements are filled and shown by static/rater.js."""
    body = """
<p id="progress"></p>
<div id="stage">
  <div id="ready" hidden><p>Look at the middle of the grey area.</p>
    <button id="show">Show the photos</button></div>
  <div id="stimulus" hidden><img id="left" alt=""><img id="right" alt=""></div>
  <div id="question" hidden><p>Which photo had <b>fake</b> colours?</p>
    <button id="fake-left">Left</button><button id="fake-right">Right</button></div>
  <div id="feedback" hidden></div>
  <div id="done" hidden><h2>Thank you!</h2>
    <p>You have answered every trial. You may close this page.</p></div>
  <div id="problem" hidden></div>
</div>
<script src="/static/rater.js"></script>
"""
    return page("Colorization study", body)
