// ONNX import, symbolic dims: the products of dim names and integers that exporters' shape arithmetic builds
// (`bsz * num_heads`), in Kiln's written form ("4 * batch": the integer first, the names sorted), so that equal
// products compare equal as strings and read back as Kiln shape arithmetic (docs/language.md).

export type Dim = number | string;

interface Product {
  k: number;
  names: string[];
}

function parse(d: Dim): Product {
  if (typeof d === "number") return { k: d, names: [] };
  let k = 1;
  const names: string[] = [];
  for (const part of d.split("*").map((s) => s.trim())) {
    if (/^\d+$/.test(part)) k *= Number(part);
    else names.push(part);
  }
  return { k, names };
}

function format(p: Product): Dim {
  if (!p.names.length || p.k === 0) return p.k;
  const names = [...p.names].sort();
  return p.k === 1 ? names.join(" * ") : `${p.k} * ${names.join(" * ")}`;
}

export function dimMul(a: Dim, b: Dim): Dim {
  const x = parse(a), y = parse(b);
  return format({ k: x.k * y.k, names: [...x.names, ...y.names] });
}

/** a / b when it is exact (an integer quotient, b's names all in a); undefined otherwise. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  const x = parse(a), y = parse(b);
  if (y.k === 0 || x.k % y.k !== 0) return undefined;
  const names = [...x.names];
  for (const n of y.names) {
    const i = names.indexOf(n);
    if (i < 0) return undefined;
    names.splice(i, 1);
  }
  return format({ k: x.k / y.k, names });
}

export function dimProd(ds: readonly Dim[]): Dim {
  return ds.reduce<Dim>((a, b) => dimMul(a, b), 1);
}
