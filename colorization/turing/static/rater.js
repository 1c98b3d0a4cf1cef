// The rater's page: fetch the current trial, load both pictures, show them for display_ms (side by side,
// or one after the other), hide them, ask which one had fake colours, send the answer, repeat.
// Everything the server knows about a trial stays there: the page only sees opaque tokens.
"use strict";

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
window.turingLog = []; // what the page did, for tests: {trial, shownMs, layout}

function only(...visible) {
  for (const id of ["ready", "stimulus", "question", "feedback", "done", "problem"]) {
    $(id).hidden = !visible.includes(id);
  }
}

async function picture(url) {
  const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`picture: HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function nextFrame() {
  return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
}

async function present(trial, left, right) {
  const sideBySide = trial.layout === "side_by_side";
  $("left").src = left;
  $("right").src = right;
  $("stimulus").className = sideBySide ? "pair" : "single";
  const slots = sideBySide ? [["left", "right"]] : [["left"], ["right"]];
  let shown = 0;
  for (const [k, slot] of slots.entries()) {
    for (const id of ["left", "right"]) $(id).hidden = !slot.includes(id);
    only("stimulus");
    await nextFrame();
    const start = performance.now();
    await sleep(trial.display_ms);
    only();
    shown += performance.now() - start;
    if (k + 1 < slots.length) await sleep(400);
  }
  window.turingLog.push({ trial: trial.number, shownMs: shown / slots.length, layout: trial.layout });
}

function answer(trial) {
  const sideBySide = trial.layout === "side_by_side";
  $("fake-left").textContent = sideBySide ? "Left" : "First";
  $("fake-right").textContent = sideBySide ? "Right" : "Second";
  only("question");
  return new Promise((done) => {
    const pick = (side) => {
      document.onkeydown = null;
      $("fake-left").onclick = $("fake-right").onclick = null;
      done(side);
    };
    $("fake-left").onclick = () => pick("left");
    $("fake-right").onclick = () => pick("right");
    document.onkeydown = (e) => {
      if (e.key === "ArrowLeft" || e.key === "1") pick("left");
      if (e.key === "ArrowRight" || e.key === "2") pick("right");
    };
  });
}

function ready(trial) {
  const phase = trial.phase === "practice" ? "Practice" : "Trial";
  $("progress").textContent = `${phase} ${trial.number} of ${trial.of}`;
  only("ready");
  return new Promise((done) => {
    const go = () => {
      document.onkeydown = null;
      $("show").onclick = null;
      done();
    };
    $("show").onclick = go;
    document.onkeydown = (e) => {
      if (e.key === " " || e.key === "Enter") go();
    };
  });
}

async function run() {
  for (;;) {
    const response = await fetch("/api/trial", { cache: "no-store", credentials: "same-origin" });
    if (response.status === 401) {
      window.location = "/";
      return;
    }
    const trial = await response.json();
    if (trial.done) {
      $("progress").textContent = "";
      only("done");
      return;
    }
    const [left, right] = await Promise.all([picture(trial.left), picture(trial.right)]);
    await ready(trial);
    await present(trial, left, right);
    const side = await answer(trial);
    const sent = await fetch("/api/answer", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ trial: trial.trial, fake: side }),
    });
    const reply = await sent.json();
    if (!sent.ok) throw new Error(reply.error || `answer: HTTP ${sent.status}`);
    URL.revokeObjectURL(left);
    URL.revokeObjectURL(right);
    if (reply.feedback) {
      $("feedback").textContent =
        reply.feedback === "right" ? "Right: that one was the fake." : "Wrong: the other one was the fake.";
      $("feedback").className = reply.feedback;
      only("feedback");
      await sleep(1200);
    }
  }
}

run().catch((err) => {
  $("problem").textContent = `Something went wrong (${err.message}). Reload the page to continue.`;
  only("problem");
});
