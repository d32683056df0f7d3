// Review dashboard: renders window.DEEPCAC2_DATA (from data.js) as a sortable, filterable
// table with per-series overlay images, IDC viewer links and distribution plots (SVG).
"use strict";
(function () {
  const data = window.DEEPCAC2_DATA;
  const rows = data.rows;
  const columns = [
    ["PatientID", "Patient", "text"], ["study_year", "Year", "num"], ["agatston", "Agatston", "num"],
    ["volume_mm3", "Volume mm\u00b3", "num"], ["mass_mg", "Mass mg", "num"], ["lesion_count", "Lesions", "num"],
    ["category_deepcac", "DeepCAC", "text"], ["category_classic", "Classic", "text"],
    ["category_cac_drs", "CAC-DRS", "text"], ["qa_flags", "QA flags", "flags"], ["SeriesInstanceUID", "Series", "uid"],
    ["image", "Overlay", "image"], ["viewer_seg", "IDC viewer", "viewer"],
  ].filter(([key]) => rows.some((r) => key in r) || key === "image" || key === "viewer_seg");
  const state = { sortKey: "PatientID", asc: true };
  const $ = (id) => document.getElementById(id);

  const DECIMALS = { agatston: 1, volume_mm3: 1, mass_mg: 1 };

  function fmt(v, key) {
    if (v === null || v === undefined) return "\u2013";
    if (key === "study_year") return "T" + v;
    if (Array.isArray(v)) return v.length ? v.join(", ") : "\u2013";
    return key in DECIMALS ? Number(v).toFixed(DECIMALS[key]) : String(v);
  }

  function filtered() {
    const text = $("filter-text").value.trim().toLowerCase();
    const cat = $("filter-category").value;
    const year = $("filter-year").value;
    const min = parseFloat($("filter-min").value) || 0;
    return rows.filter((r) =>
      (!text || [r.PatientID, r.StudyInstanceUID, r.SeriesInstanceUID].some((v) => String(v).toLowerCase().includes(text))) &&
      (!cat || r.category_deepcac === cat) &&
      (!year || String(r.study_year) === year) &&
      (r.agatston || 0) >= min);
  }

  function sorted(list) {
    const k = state.sortKey, sign = state.asc ? 1 : -1;
    return list.slice().sort((a, b) => {
      const x = a[k], y = b[k];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (typeof x === "number" ? x - y : String(x).localeCompare(String(y))) * sign;
    });
  }

  function cell(r, [key, , kind]) {
    const td = document.createElement("td");
    const v = r[key];
    if (kind === "num") { td.className = "num"; td.textContent = fmt(v, key); }
    else if (kind === "uid") { td.className = "uid"; td.textContent = v; td.title = v; }
    else if (kind === "image") {
      if (v) {
        const img = document.createElement("img");
        img.className = "thumb"; img.src = v; img.alt = "overlay " + r.SeriesInstanceUID; img.loading = "lazy";
        img.addEventListener("click", () => showImage(v, r));
        td.appendChild(img);
      } else td.textContent = "\u2013";
    } else if (kind === "viewer") {
      // OHIF v3 on the study, opened on our SEG over its CT, and on our SR
      [[r.viewer_seg, "SEG"], [r.viewer_sr, "SR"]].forEach(([href, text]) => {
        if (!href) return;
        const a = document.createElement("a");
        a.href = href; a.target = "_blank"; a.rel = "noopener"; a.textContent = text; a.className = "viewer";
        td.appendChild(a); td.appendChild(document.createTextNode(" "));
      });
    } else if (kind === "flags") {
      td.className = "flags";
      (v || []).forEach((f) => { const s = document.createElement("span"); s.className = "flag"; s.textContent = f; td.appendChild(s); });
    } else {
      td.textContent = fmt(v, key);
      if (key === "category_deepcac" && v) td.className = "cat-" + v.replace(/\s+/g, "-");
    }
    return td;
  }

  function showImage(src, r) {
    const box = $("viewer");
    box.querySelector("img").src = src;
    box.querySelector("p").textContent = r.PatientID + " \u00b7 " + r.SeriesInstanceUID;
    box.hidden = false;
  }

  function svgEl(tag, attrs, text) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function barChart(svg, labels, counts, colors) {
    svg.replaceChildren();
    const max = Math.max(1, ...counts), w = 400 / labels.length;
    counts.forEach((c, i) => {
      const h = (c / max) * 140;
      const fill = colors ? colors[i] : "#4c78a8";
      svg.appendChild(svgEl("rect", { x: 15 + i * w + 2, y: 155 - h, width: w - 4, height: h, fill: fill }));
      svg.appendChild(svgEl("text", { x: 15 + i * w + w / 2, y: 150 - h, "text-anchor": "middle" }, String(c)));
      svg.appendChild(svgEl("text", { x: 15 + i * w + w / 2, y: 170, "text-anchor": "middle" }, labels[i]));
    });
  }

  // Agatston decades: exactly 0, then (0, 1], (1, 10], ... and above 10,000
  const DECADES = [0, 1, 10, 100, 1000, 10000];
  const DECADE_LABELS = ["0", "0\u20131", "1\u201310", "10\u2013100", "100\u20131k", "1k\u201310k", ">10k"];
  const GROUP_COLORS = ["#2f855a", "#d69e2e", "#dd6b20", "#c53030"];

  function plots(list) {
    const counts = DECADE_LABELS.map(() => 0);
    list.forEach((r) => {
      const a = r.agatston || 0;
      counts[a <= 0 ? 0 : DECADES.filter((e) => a > e).length] += 1;
    });
    barChart($("hist"), DECADE_LABELS, counts);
    const groups = data.schemes.deepcac;
    barChart($("bars"), groups, groups.map((g) => list.filter((r) => r.category_deepcac === g).length), GROUP_COLORS);
  }

  function render() {
    const list = sorted(filtered());
    const body = $("rows");
    body.replaceChildren(...list.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.patient = r.PatientID;
      tr.id = "series-" + r.SeriesInstanceUID;  // the QA report links here
      columns.forEach((c) => tr.appendChild(cell(r, c)));
      return tr;
    }));
    $("row-count").textContent = list.length;
    document.querySelectorAll("#head th").forEach((th) => {
      th.className = th.dataset.key === state.sortKey ? (state.asc ? "asc" : "desc") : "";
    });
    plots(list);
  }

  function showLinked() {
    // a link from the QA report: #series-<SeriesInstanceUID>
    const id = decodeURIComponent(location.hash.slice(1));
    if (!id) return;
    const tr = document.getElementById(id);
    const note = $("linked");
    if (tr) { tr.classList.add("linked"); tr.scrollIntoView({ block: "center" }); note.hidden = true; }
    else { note.textContent = "Series " + id.replace(/^series-/, "") + " is not in this dashboard's sample."; note.hidden = false; }
  }

  function init() {
    $("convention").textContent = data.convention;
    $("n-patients").textContent = data.patients;
    $("n-series").textContent = rows.length;
    const head = $("head");
    columns.forEach(([key, label]) => {
      const th = document.createElement("th");
      th.textContent = label; th.dataset.key = key;
      th.addEventListener("click", () => {
        state.asc = state.sortKey === key ? !state.asc : true;
        state.sortKey = key;
        render();
      });
      head.appendChild(th);
    });
    data.schemes.deepcac.forEach((g) => $("filter-category").appendChild(new Option(g, g)));
    [...new Set(rows.map((r) => r.study_year).filter((y) => y !== null && y !== undefined))].sort()
      .forEach((y) => $("filter-year").appendChild(new Option("T" + y, String(y))));
    ["filter-text", "filter-category", "filter-year", "filter-min"].forEach((id) => $(id).addEventListener("input", render));
    $("viewer").addEventListener("click", () => { $("viewer").hidden = true; });
    render();
    showLinked();
    window.addEventListener("hashchange", showLinked);
  }

  init();
})();
