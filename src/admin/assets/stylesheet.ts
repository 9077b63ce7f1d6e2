/**
 * The admin page's stylesheet, served as a file by the handler (`style-src 'self'`: no inline
 * styles anywhere). Plain CSS, no framework: system fonts, tables, tabs, a few badges.
 *
 * @module
 */
export const STYLESHEET = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d8dde6; --bg: #f6f7f9; --accent: #1f5fbf;
  --ok: #17663a; --ok-bg: #e3f4ea; --bad: #a3261b; --bad-bg: #fbe7e5; --warn: #7a5200; --warn-bg: #fdf1d6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header.top { background: #fff; border-bottom: 1px solid var(--line); padding: 0.75rem 1.5rem; display: flex; gap: 1rem; align-items: baseline; }
header.top .brand { font-weight: 600; }
header.top nav a { color: var(--accent); }
main { max-width: 72rem; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: 0.25rem 0 0.75rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 1.25rem 0 0.5rem; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.notice, .errors { border-radius: 6px; padding: 0.6rem 0.9rem; margin: 0.75rem 0; }
.notice { background: var(--ok-bg); color: var(--ok); border: 1px solid #b9e2c8; }
.errors { background: var(--bad-bg); color: var(--bad); border: 1px solid #f1c3be; }
.errors ul { margin: 0.25rem 0 0; padding-left: 1.25rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 0.45rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: 0.9rem; }
td.wrap { word-break: break-all; }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.82rem; font-weight: 600; }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.off { background: #e7e9ee; color: var(--muted); }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 0.5rem 0 1rem; }
.actions form { margin: 0; }
button, .button { font: inherit; padding: 0.35rem 0.85rem; border-radius: 6px; border: 1px solid #b7c0cf; background: #fff; color: var(--fg); cursor: pointer; text-decoration: none; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid #8bb4f0; outline-offset: 1px; }
[role="tablist"] { display: flex; gap: 0.25rem; border-bottom: 1px solid var(--line); margin-top: 1rem; }
[role="tab"] { padding: 0.5rem 1rem; border: 1px solid transparent; border-bottom: none; border-radius: 6px 6px 0 0; color: var(--fg); text-decoration: none; }
[role="tab"][aria-selected="true"] { background: #fff; border-color: var(--line); margin-bottom: -1px; font-weight: 600; }
[role="tabpanel"] { background: #fff; border: 1px solid var(--line); border-top: none; padding: 1rem 1.25rem; }
[hidden] { display: none !important; }
form.fields { display: grid; grid-template-columns: 12rem 1fr; gap: 0.6rem 1rem; align-items: start; max-width: 56rem; }
form.fields > .full { grid-column: 1 / -1; }
label { font-weight: 500; }
input[type="text"], input[type="url"], input[type="number"], input[type="password"], select, textarea { font: inherit; padding: 0.35rem 0.5rem; border: 1px solid #b7c0cf; border-radius: 5px; width: 100%; background: #fff; }
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88rem; min-height: 14rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 0.75rem; margin: 0; }
legend { font-weight: 500; padding: 0 0.25rem; }
.checks { display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem; }
.checks.scroll { max-height: 12rem; overflow: auto; padding: 0.25rem; }
.checks label { font-weight: normal; }
.hint { color: var(--muted); font-size: 0.88rem; }
table.headers td { padding: 0.25rem; }
pre { background: #f3f5f8; border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.75rem; overflow: auto; max-height: 28rem; white-space: pre-wrap; word-break: break-all; font-size: 0.85rem; margin: 0.25rem 0 1rem; }
.payload-editor { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.25rem; }
.pager { display: flex; gap: 1rem; margin-top: 0.75rem; }
dl.summary { display: grid; grid-template-columns: 12rem 1fr; gap: 0.25rem 1rem; margin: 0 0 1rem; }
dl.summary dt { color: var(--muted); }
dl.summary dd { margin: 0; word-break: break-all; }
@media (max-width: 48rem) { form.fields, dl.summary, .payload-editor { grid-template-columns: 1fr; } }
`;
