// "Did you mean ...?" for a name that is not known (a method name, an option key): the known name
// closest to it, when one is close enough to be a typo. Run only on the way to an error.

/**
 * The known name closest to `name`: one that differs only in letter case, else the nearest by
 * edit distance within a third of the name's length (at least 1, at most 3 edits). Undefined
 * when nothing is that close.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    if (candidate === name) continue;
    const ignoringCase = editDistance(lower, candidate.toLowerCase());
    if (ignoringCase > 0 && ignoringCase > limit) continue;
    // Letter case aside first; among equals, the one closest with its case.
    const score = ignoringCase * 1_000 + editDistance(name, candidate);
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** `; did you mean "x"?` when a known name is close to `name`, else the empty string. */
export function didYouMean(name: string, known: Iterable<string>): string {
  const closest = closestName(name, known);
  return closest === undefined ? '' : `; did you mean ${closest}?`;
}

/**
 * Edit distance with adjacent transpositions (optimal string alignment): insertions, deletions,
 * substitutions and swaps of two neighbours ("Ecoh" is one edit from "Echo") each count one.
 */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      row[j] = d;
    }
    before = previous;
    previous = row;
  }
  return previous[b.length]!;
}
