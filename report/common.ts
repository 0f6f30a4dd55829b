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
