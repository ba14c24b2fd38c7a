"""``report.html``: one self-contained page (no network, no files beside it).

What it shows, top to bottom: the counts by verdict (each a filter), the causes (largest
first, each linking to its example), the stale expectations, a matrix of scenarios by
(target, interpreter) coloured by verdict, and the fuzz findings with their bytes and
replay command. Filters: verdicts, family, a search box (ids, descriptions, reasons).
A cell opens a panel with the result's description, reason, diff, notes, expectation and
reproducer (with a copy button).

The matrix is plain HTML, so the page reads without scripts; the script adds the filters
and the panel. The report's rows are embedded as JSON. The address's fragment keeps the
state, so a link can open a view: ``report.html#row=12``, ``#verdict=differs,fails``,
``#family=http/headers``, ``#q=mimetypes`` (joined with ``&``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness.compare import VERDICTS, Verdict
from harness.reports.row import family_of

_ABBREV = {
    "same": "✓",
    "explained": "E",
    "differs": "D",
    "fails": "F",
    "hang": "H",
    "flaky": "~",
    "error": "!",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def columns(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The matrix columns: (target, interpreter), targets in report order, then others."""
    order = {t["name"]: i for i, t in enumerate(report.get("targets", []))}
    interp = {i["label"]: n for n, i in enumerate(report.get("interpreters", []))}
    found = {(r["target"], r.get("interpreter", "")) for r in report["results"]}
    # A result without an interpreter joins its target's only column, when it has one.
    for target, label in list(found):
        others = {c for c in found if c[0] == target and c[1]}
        if not label and len(others) == 1:
            found.discard((target, label))
    return sorted(found, key=lambda c: (order.get(c[0], len(order)), c[0], interp.get(c[1], 0)))


def _column_of(row: dict[str, Any], cols: list[tuple[str, str]]) -> tuple[str, str]:
    """The column a row is shown in (see ``columns``)."""
    key = (row["target"], row.get("interpreter", ""))
    if key in cols or key[1]:
        return key
    return next((c for c in cols if c[0] == key[0]), key)


def _json_for_script(value: Any) -> str:
    # Inside <script>, "</" would end the element early; JSON allows "<" escaped.
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def render(report: dict[str, Any]) -> str:
    """The HTML text of a report."""
    rows = report["results"]
    cols = columns(report)
    grid = len({c[1] for c in cols if c[1]}) > 1
    by_scenario: dict[str, dict[tuple[str, str], int]] = {}
    descriptions: dict[str, str] = {}
    for index, r in enumerate(rows):
        by_scenario.setdefault(r["scenario"], {})[_column_of(r, cols)] = index
        descriptions.setdefault(r["scenario"], r.get("description", ""))
    families = sorted({family_of(s) for s in by_scenario})
    problems = report.get("problems", 0)
    stale = (report.get("expectations") or {}).get("stale", [])
    ok = not problems and not stale and not report.get("interrupted")
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    add("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    add(f"<title>Compatibility report: {_e(_title_targets(report))}</title>")
    add(f"<style>{_CSS}</style></head><body>")
    add("<header>")
    add(f"<h1>Compatibility report <small>{_e(_title_targets(report))}</small></h1>")
    status = "no unexpected difference" if ok else f"{problems} unexpected result(s)"
    if stale:
        status += f", {len(stale)} stale expectation(s)"
    add(
        f"<p class='status {'ok' if ok else 'bad'}' id='status'>{_e(status)}</p>"
        f"<p class='meta'>{len(by_scenario)} scenarios · {_e(report['duration_s'])} s · "
        f"{_e(report.get('created', ''))} · <code>{_e(' '.join(report.get('command', [])))}"
        "</code></p>"
    )
    if report.get("interrupted"):
        add(
            f"<p class='warn'>Interrupted by {_e(report['interrupted'])}: "
            "only the results that finished are here.</p>"
        )
    add("<details class='targets'><summary>Targets and interpreters</summary><table>")
    add("<tr><th>role</th><th>name</th><th>modules</th><th>python</th></tr>")
    for t in report.get("targets", []):
        modules = ", ".join(f"{k}={v}" for k, v in t.get("modules", {}).items()) or "stdlib"
        add(
            f"<tr><td>{_e(t.get('role', ''))}</td><td>{_e(t['name'])}</td>"
            f"<td><code>{_e(modules)}</code></td>"
            f"<td><code>{_e(t.get('interpreter') or t.get('python', ''))}</code></td></tr>"
        )
    for i in report.get("interpreters", []):
        add(
            f"<tr><td>interpreter</td><td>{_e(i['label'])}</td><td></td>"
            f"<td><code>{_e(i.get('python', ''))} {_e(i.get('version', ''))}</code></td></tr>"
        )
    add("</table></details></header>")

    add("<section id='counts' aria-label='counts by verdict'>")
    for v in Verdict:
        n = report["counts"].get(v.value, 0)
        add(
            f"<button type='button' class='count v-{v.value}' data-verdict='{v.value}' "
            f"aria-pressed='true' title='{_e(VERDICTS[v.value][0])}'"
            f"{' disabled' if not n else ''}>"
            f"<b>{n}</b> {v.value}</button>"
        )
    if report.get("expected"):
        add(f"<span class='count expected'><b>{report['expected']}</b> expected</span>")
    add("</section>")

    if report.get("causes"):
        add("<section id='causes'><h2>Causes, largest first</h2><ol>")
        for g in report["causes"]:
            example = rows[g["example"]]
            verdicts = ", ".join(f"{n} {v}" for v, n in g["verdicts"].items())
            add(
                f"<li><b class='n'>{g['count']}&times;</b> {_e(g['title'])} "
                f"<span class='dim'>({_e(verdicts)}; {_e(', '.join(g['targets']))})</span> "
                f"<a href='#row={g['example']}' data-open='{g['example']}'>example: "
                f"{_e(example['scenario'])}</a> · "
                f"<a href='#cause={_e(g['key'])}' data-cause='{_e(g['key'])}'>show all</a></li>"
            )
        add("</ol></section>")

    if stale:
        add("<section id='stale'><h2>Stale expectations</h2><ul>")
        for s in stale:
            where = f"{s['target']} @ {s['interpreter']}" if grid else s["target"]
            add(
                f"<li>entry #{s['entry']}: <code>{_e(s['scenario'])}</code> on {_e(where)} is "
                f"now <b class='v-text-{_e(s['verdict'])}'>{_e(s['verdict'])}</b>, expected "
                f"{_e(s['expected'])} <span class='dim'>({_e(s['reason'])})</span></li>"
            )
        add("</ul></section>")

    add("<section id='filters' aria-label='filters'>")
    add("<label>Family <select id='family'><option value=''>all families</option>")
    for f in families:
        add(f"<option value='{_e(f)}'>{_e(f)}</option>")
    add("</select></label>")
    add(
        "<label>Search <input id='search' type='search' placeholder='id, description, reason'"
        " autocomplete='off'></label>"
    )
    add("<label><input id='problems' type='checkbox'> only rows with a problem</label>")
    add("<span id='shown' class='dim'></span></section>")

    add("<section id='matrix-wrap'><table id='matrix'><thead><tr><th class='sid'>scenario</th>")
    for target, interp in cols:
        label = f"{_e(target)}<br><span class='dim'>{_e(interp)}</span>" if grid else _e(target)
        add(f"<th class='col' title='{_e(target)} {_e(interp)}'>{label}</th>")
    add("</tr></thead><tbody>")
    for family in families:
        members = [s for s in by_scenario if family_of(s) == family]
        add(
            f"<tr class='fam' data-family='{_e(family)}'><th colspan='{len(cols) + 1}'>"
            f"{_e(family)} <span class='dim'>({len(members)})</span></th></tr>"
        )
        for sid in sorted(members):
            cells = by_scenario[sid]
            verdicts = sorted({rows[i]["verdict"] for i in cells.values()})
            problem = any(_problem(rows[i]) for i in cells.values())
            causes = " ".join(sorted({rows[i].get("cause", "") for i in cells.values()} - {""}))
            search = " ".join(
                [sid, descriptions.get(sid, "")]
                + [rows[i].get("reason", "") for i in cells.values()]
            ).lower()
            add(
                f"<tr class='sc' data-family='{_e(family)}' data-verdicts='{_e(' '.join(verdicts))}'"
                f" data-problem='{int(problem)}' data-causes='{_e(causes)}'"
                f" data-search='{_e(search)}'><th class='sid' title='{_e(descriptions.get(sid, ''))}'>"
                f"{_e(sid)}</th>"
            )
            for col in cols:
                index = cells.get(col)
                if index is None:
                    add("<td class='cell none' title='not run'></td>")
                    continue
                r = rows[index]
                extra = " expected" if r.get("expected") else ""
                tip = f"{r['verdict']}: {r.get('reason', '')}".strip().rstrip(":")
                add(
                    f"<td class='cell v-{_e(r['verdict'])}{extra}' data-row='{index}' "
                    f"tabindex='0' role='button' title='{_e(tip[:300])}'>"
                    f"<a href='#row={index}'>{_ABBREV.get(r['verdict'], '?')}</a></td>"
                )
            add("</tr>")
    add("</tbody></table></section>")

    findings = [(i, r) for i, r in enumerate(rows) if r.get("finding")]
    if findings or report.get("fuzz"):
        add("<section id='fuzz'><h2>Fuzz findings</h2>")
        fuzz = report.get("fuzz") or {}
        if fuzz:
            summary = ", ".join(
                f"{k}: {v}" for k, v in fuzz.items() if isinstance(v, (str, int, float))
            )
            add(f"<p class='dim'>{_e(summary)}</p>")
        if not findings:
            add("<p>Nothing found.</p>")
        for index, r in findings:
            f = r["finding"]
            add(
                f"<div class='finding'><h3><span class='pill v-{_e(r['verdict'])}'>"
                f"{_e(r['verdict'])}</span> {_e(f.get('kind') or '')} "
                f"<a href='#row={index}' data-open='{index}'>{_e(r['scenario'])}</a></h3>"
            )
            if f.get("schedule"):
                add(f"<p class='dim'>{_e(f['schedule'])}</p>")
            add(f"<pre class='bytes'>{_e(f['data'])}</pre>")
            add(f"<pre class='cmd'>{_e(f['replay'])}</pre></div>")
        add("</section>")

    add(
        "<aside id='panel' hidden aria-live='polite'><button type='button' id='close' "
        "aria-label='close'>&times;</button><div id='detail'></div></aside>"
    )
    add(f"<script type='application/json' id='report-data'>{_json_for_script(rows)}</script>")
    causes = {
        g["key"]: {"title": g["title"], "count": g["count"]} for g in report.get("causes", [])
    }
    add(f"<script type='application/json' id='causes-data'>{_json_for_script(causes)}</script>")
    add(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _problem(row: dict[str, Any]) -> bool:
    return row["verdict"] not in ("same", "explained") and not row.get("expected")


def _title_targets(report: dict[str, Any]) -> str:
    targets = [t["name"] for t in report.get("targets", []) if t.get("role") != "baseline"]
    baseline = [t["name"] for t in report.get("targets", []) if t.get("role") == "baseline"]
    names = ", ".join(dict.fromkeys(targets)) or "?"
    return f"{names} vs {', '.join(dict.fromkeys(baseline))}" if baseline else names


def write(report: dict[str, Any], path: Path) -> Path:
    """Write the page to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path


_CSS = """
:root{--same:#2da44e;--explained:#0969da;--differs:#cf222e;--fails:#82071e;--hang:#8250df;
--flaky:#bf8700;--error:#24292f;--none:#eaeef2;--fg:#1f2328;--dim:#656d76;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;padding:16px 24px 48px}
h1{font-size:22px;margin:0 0 4px}h1 small{font-weight:400;color:var(--dim)}
h2{font-size:16px;margin:20px 0 8px}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.dim{color:var(--dim)}.meta{color:var(--dim);margin:2px 0 8px}
.status{display:inline-block;margin:4px 0;padding:2px 10px;border-radius:12px;font-weight:600}
.status.ok{background:#dafbe1;color:#116329}.status.bad{background:#ffebe9;color:#a40e26}
.warn{background:#fff8c5;padding:6px 10px;border-radius:6px}
details.targets table{border-collapse:collapse;margin:6px 0}
details.targets td,details.targets th{border:1px solid var(--line);padding:2px 8px;text-align:left}
#counts{display:flex;gap:8px;flex-wrap:wrap;margin:12px 0}
.count{border:0;border-radius:6px;padding:6px 12px;color:#fff;font-size:14px;cursor:pointer}
.count b{font-size:18px;margin-right:4px}.count[aria-pressed=false]{opacity:.3}
.count:disabled{opacity:.15;cursor:default}
.count.expected{background:repeating-linear-gradient(45deg,#57606a,#57606a 6px,#6e7781 6px,#6e7781 12px);cursor:default}
.v-same{background:var(--same)}.v-explained{background:var(--explained)}
.v-differs{background:var(--differs)}.v-fails{background:var(--fails)}
.v-hang{background:var(--hang)}.v-flaky{background:var(--flaky)}.v-error{background:var(--error)}
#causes ol{margin:0;padding-left:22px}#causes li{margin:3px 0}.n{font-size:15px}
#filters{display:flex;gap:18px;align-items:center;flex-wrap:wrap;margin:16px 0 8px;
padding:8px 10px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px}
#filters input[type=search]{width:260px;padding:3px 6px}
#matrix-wrap{display:inline-block;max-width:100%;overflow:auto;max-height:75vh;border:1px solid var(--line);border-radius:6px}
#matrix{border-collapse:separate;border-spacing:0;width:max-content}
#matrix thead th{position:sticky;top:0;background:#fff;z-index:2;border-bottom:1px solid var(--line);
padding:4px 8px;font-weight:600}
#matrix th.sid{text-align:left;font-weight:400;padding:1px 12px 1px 8px;white-space:nowrap;
position:sticky;left:0;background:#fff;z-index:1}
#matrix thead th.sid{z-index:3;font-weight:600}
#matrix tr.fam th{text-align:left;background:#f6f8fa;padding:4px 8px;font-weight:600;
border-top:1px solid var(--line);position:sticky;left:0}
#matrix tr.sc:hover th.sid{background:#f3f4f6}
td.cell{width:64px;min-width:48px;height:20px;text-align:center;border:1px solid #fff;padding:0;
cursor:pointer;color:#fff;font-weight:700;font-size:12px}
td.cell a{color:inherit;text-decoration:none;display:block}
td.cell.none{background:var(--none);cursor:default}
td.cell.expected{background-image:repeating-linear-gradient(45deg,rgba(255,255,255,.35) 0 4px,transparent 4px 8px)}
td.cell:focus,td.cell.current{outline:3px solid #fb8500;outline-offset:-2px}
.pill{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px}
#panel{position:fixed;top:0;right:0;bottom:0;width:min(720px,55vw);background:#fff;z-index:10;
border-left:1px solid var(--line);box-shadow:-6px 0 24px rgba(0,0,0,.12);overflow:auto;padding:16px 20px}
#close{position:absolute;top:8px;right:12px;font-size:22px;border:0;background:none;cursor:pointer}
#detail h2{margin-top:0;padding-right:30px;word-break:break-all}
#detail dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:8px 0}
#detail dt{color:var(--dim)}#detail dd{margin:0;word-break:break-word}
pre.diff,pre.cmd,pre.bytes,pre.obs{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;
padding:8px 10px;overflow:auto;white-space:pre}
pre.cmd,pre.bytes{white-space:pre-wrap;word-break:break-all}
pre.diff .add{background:#dafbe1;display:block}pre.diff .del{background:#ffebe9;display:block}
pre.diff .hunk{color:#8250df;display:block}pre.diff .file{font-weight:700;display:block}
.copy{font-size:12px;margin-left:8px}
.finding{border:1px solid var(--line);border-radius:6px;padding:4px 12px;margin:8px 0}
.finding h3{font-size:14px}
@media print{#filters,#panel{display:none}#matrix-wrap{max-height:none}}
"""

_JS = r"""
(function(){
"use strict";
const rows = JSON.parse(document.getElementById("report-data").textContent);
const causes = JSON.parse(document.getElementById("causes-data").textContent);
const $ = (s, el) => (el || document).querySelector(s);
const $$ = (s, el) => Array.from((el || document).querySelectorAll(s));
const state = {verdicts: null, family: "", q: "", problems: false, cause: "", row: null};
const all = $$("#counts .count[data-verdict]").map(b => b.dataset.verdict);

function el(tag, attrs, ...kids){
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined)
    e.append(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}

function diffBlock(text){
  const pre = el("pre", {class: "diff"});
  for (const line of text.split("\n")) {
    let cls = "";
    if (line.startsWith("+++") || line.startsWith("---")) cls = "file";
    else if (line.startsWith("@@")) cls = "hunk";
    else if (line.startsWith("+")) cls = "add";
    else if (line.startsWith("-")) cls = "del";
    pre.append(el("span", cls ? {class: cls} : {}, line + "\n"));
  }
  return pre;
}

function copyButton(text){
  const b = el("button", {type: "button", class: "copy"}, "copy");
  b.addEventListener("click", () => {
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(
      () => { b.textContent = "copied"; }, () => { b.textContent = "select and copy"; });
  });
  return b;
}

function open(index){
  const r = rows[index];
  if (!r) return;
  state.row = index;
  $$("td.cell.current").forEach(c => c.classList.remove("current"));
  const cell = $(`td.cell[data-row="${index}"]`);
  if (cell) cell.classList.add("current");
  const d = $("#detail");
  d.replaceChildren();
  d.append(el("h2", {}, r.scenario));
  if (r.description) d.append(el("p", {}, r.description));
  const dl = el("dl", {});
  const item = (k, v) => { if (v) dl.append(el("dt", {}, k), el("dd", {}, v)); };
  item("target", r.target + (r.interpreter ? " @ " + r.interpreter : ""));
  dl.append(el("dt", {}, "verdict"),
            el("dd", {}, el("span", {class: "pill v-" + r.verdict}, r.verdict)));
  item("reason", r.reason);
  if (r.expected) item("expected", "entry #" + r.expected.entry + " (" + r.expected.verdict +
                       "): " + r.expected.reason);
  item("notes", (r.notes || []).join("; "));
  if (r.cause && causes[r.cause]) {
    const c = causes[r.cause];
    const link = el("a", {href: "#cause=" + r.cause}, "show all " + c.count);
    link.addEventListener("click", e => { e.preventDefault(); state.cause = r.cause; apply(); });
    dl.append(el("dt", {}, "cause"), el("dd", {}, c.title + " (", link, ")"));
  }
  item("differing keys", (r.differing_keys || []).join(", "));
  item("violations", (r.violations || []).join("; "));
  item("python", (r.python || []).join("."));
  item("time", r.duration_s ? r.duration_s + " s" : "");
  d.append(dl);
  if (r.diff) { d.append(el("h3", {}, "Diff (baseline first)")); d.append(diffBlock(r.diff)); }
  if (r.finding) {
    d.append(el("h3", {}, "Fuzzed input"));
    d.append(el("pre", {class: "bytes"}, r.finding.data));
    d.append(el("h3", {}, "Replay", copyButton(r.finding.replay)));
    d.append(el("pre", {class: "cmd"}, r.finding.replay));
  }
  if (r.reproducer) {
    d.append(el("h3", {}, "Reproduce", copyButton(r.reproducer)));
    d.append(el("pre", {class: "cmd", id: "reproducer"}, r.reproducer));
  }
  if (r.observation) {
    const det = el("details", {}, el("summary", {}, "The target's observation"));
    det.append(el("pre", {class: "obs"}, JSON.stringify(r.observation, null, 1)));
    d.append(det);
  }
  $("#panel").hidden = false;
  writeHash();
}

function close(){
  $("#panel").hidden = true;
  state.row = null;
  $$("td.cell.current").forEach(c => c.classList.remove("current"));
  writeHash();
}

function apply(){
  const q = state.q.toLowerCase().trim();
  const active = state.verdicts;
  let shown = 0;
  const famShown = {};
  for (const tr of $$("#matrix tr.sc")) {
    let ok = true;
    if (state.family && tr.dataset.family !== state.family) ok = false;
    if (ok && active) ok = tr.dataset.verdicts.split(" ").some(v => active.has(v));
    if (ok && state.problems) ok = tr.dataset.problem === "1";
    if (ok && state.cause) ok = tr.dataset.causes.split(" ").includes(state.cause);
    if (ok && q) ok = tr.dataset.search.includes(q);
    tr.hidden = !ok;
    if (ok) { shown++; famShown[tr.dataset.family] = true; }
  }
  for (const tr of $$("#matrix tr.fam")) tr.hidden = !famShown[tr.dataset.family];
  for (const b of $$("#counts .count[data-verdict]"))
    b.setAttribute("aria-pressed", String(!active || active.has(b.dataset.verdict)));
  const total = $$("#matrix tr.sc").length;
  $("#shown").textContent = shown === total ? total + " scenarios" :
    shown + " of " + total + " scenarios shown" + (state.cause ? " (one cause)" : "");
  $("#family").value = state.family;
  $("#problems").checked = state.problems;
  if ($("#search").value !== state.q) $("#search").value = state.q;
  writeHash();
}

function writeHash(){
  const parts = [];
  if (state.verdicts) parts.push("verdict=" + Array.from(state.verdicts).join(","));
  if (state.family) parts.push("family=" + encodeURIComponent(state.family));
  if (state.q) parts.push("q=" + encodeURIComponent(state.q));
  if (state.problems) parts.push("problems=1");
  if (state.cause) parts.push("cause=" + state.cause);
  if (state.row !== null) parts.push("row=" + state.row);
  const hash = parts.length ? "#" + parts.join("&") : "";
  if (location.hash !== hash) history.replaceState(null, "", hash || location.pathname);
}

function readHash(){
  const params = new URLSearchParams(location.hash.slice(1));
  const v = params.get("verdict");
  state.verdicts = v ? new Set(v.split(",").filter(x => all.includes(x))) : null;
  state.family = params.get("family") || "";
  state.q = params.get("q") || "";
  state.problems = params.get("problems") === "1";
  state.cause = params.get("cause") || "";
  apply();
  const row = params.get("row");
  if (row !== null && rows[Number(row)]) open(Number(row)); else if (state.row !== null) close();
}

$$("#counts .count[data-verdict]").forEach(b => b.addEventListener("click", () => {
  const v = b.dataset.verdict;
  let set = state.verdicts ? new Set(state.verdicts) : new Set(all);
  if (!state.verdicts) set = new Set([v]);
  else if (set.has(v)) set.delete(v); else set.add(v);
  state.verdicts = (set.size === 0 || set.size === all.length) ? null : set;
  apply();
}));
$("#family").addEventListener("change", e => { state.family = e.target.value; apply(); });
$("#search").addEventListener("input", e => { state.q = e.target.value; apply(); });
$("#problems").addEventListener("change", e => { state.problems = e.target.checked; apply(); });
$("#matrix").addEventListener("click", e => {
  const cell = e.target.closest("td.cell[data-row]");
  if (cell) { e.preventDefault(); open(Number(cell.dataset.row)); }
});
$("#matrix").addEventListener("keydown", e => {
  const cell = e.target.closest("td.cell[data-row]");
  if (cell && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); open(Number(cell.dataset.row)); }
});
$$("[data-open]").forEach(a => a.addEventListener("click", e => {
  e.preventDefault(); open(Number(a.dataset.open));
}));
$$("[data-cause]").forEach(a => a.addEventListener("click", e => {
  e.preventDefault(); state.cause = a.dataset.cause; apply();
}));
$("#close").addEventListener("click", close);
document.addEventListener("keydown", e => { if (e.key === "Escape") close(); });
window.addEventListener("hashchange", readHash);
readHash();
document.body.dataset.ready = "1";
})();
"""
