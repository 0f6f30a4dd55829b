import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { markdownText } from "../report/common.js";
import { runCli, tempDir } from "./helpers/cli.js";

/**
 * A class summary's Markdown carries the roster's names as text, never as HTML or Markdown of
 * their own: a name cannot inject a tag, a link or an extra table cell into summary.md (which
 * instructors open in renderers that pass raw HTML through). Before, names were written raw.
 */

describe("summary.md escapes what the roster gives", () => {
  it("roster names with HTML, Markdown and table marks come out as literal text", async () => {
    const work = tempDir("kmslab-class-md-");
    const roster = join(work, "learners.csv");
    const names = [
      '<img src=x onerror="alert(1)">',
      "**Eve** [site](https://example.com)",
      "Pipe | Cell",
      "`tick`",
    ];
    writeFileSync(
      roster,
      `name,suffix\n${names.map((n, i) => `"${n.replace(/"/g, '""')}",-l${i}`).join("\n")}\n`,
    );
    const out = join(work, "class");
    const res = await runCli(["--sim-data", join(work, "sim"), "grade", "--class", roster, "--out", out], {
      cwd: work,
      env: { KMSLAB_SIM_PROFILE: "instant" },
    });
    expect(res.code, res.stderr).toBe(0); // every learner graded (none has done anything)
    const md = readFileSync(join(out, "summary.md"), "utf8");
    expect(md).not.toContain("<img");
    expect(md).not.toContain("**Eve**");
    expect(md).not.toContain("[site](");
    expect(md).toContain('| &#60;img src=x onerror="alert(1)"&#62; | 0/100 |');
    expect(md).toContain("| \\*\\*Eve\\*\\* \\[site\\](https://example.com) | 0/100 |");
    expect(md).toContain("| Pipe \\| Cell | 0/100 |");
    expect(md).toContain("| \\`tick\\` | 0/100 |");
  });

  it("markdownText leaves plain names as they are and puts a line break on one line", () => {
    expect(markdownText("Ann Smith-Jones")).toBe("Ann Smith-Jones");
    expect(markdownText("two\nlines")).toBe("two lines");
    expect(markdownText("a & b")).toBe("a &#38; b");
  });
});
