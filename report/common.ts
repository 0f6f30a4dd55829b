import type { Outcome } from "../grade/grade.js";

/** What every renderer shares: outcome names and colours, HTML escaping. */
export const OUTCOME_LABEL: Record<Outcome, string> = {
  passed: "passed",
  partial: "partial",
  failed: "failed",
  notAttempted: "not attempted",
};

export const OUTCOME_COLOUR: Record<Outcome, string> = {
  passed: "#2e7d32",
  partial: "#ef8f00",
  failed: "#c62828",
  notAttempted: "#9e9e9e",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Text from outside (a roster's names, an error message) as Markdown shows it, literally, inside a
 * line: HTML's `<`, `>` and `&` as entities (a renderer would otherwise pass `<script>` through as
 * HTML), the marks of emphasis, code, links and tables backslash-escaped (nothing it did not mean,
 * no table cell ended early by `|`), and line breaks as spaces (a table row is one line).
 */
export function markdownText(text: string): string {
  return text
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/\r\n|[\r\n]/g, " ");
}
