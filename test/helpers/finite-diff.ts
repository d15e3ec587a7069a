// Test helper: the central finite difference that gradient tests compare compiled gradients with.

/** (f(x + h e_i) - f(x - h e_i)) / 2h with h = 1e-6 max(1, |x_i|); x[i] is perturbed in place and restored. */
export function centralDifference(x: { [i: number]: number }, i: number, f: () => number): number {
  const h = 1e-6 * Math.max(1, Math.abs(x[i]!));
  const orig = x[i]!;
  x[i] = orig + h;
  const up = f();
  x[i] = orig - h;
  const down = f();
  x[i] = orig;
  return (up - down) / (2 * h);
}
