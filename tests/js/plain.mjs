// A decoded ROS 2 message as plain JSON: typed arrays become lists, 64-bit integers numbers
// (strings past 2^53), and non-finite floats the strings "NaN", "Infinity", "-Infinity".

export function plain(value) {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (typeof value === "number") {
    return Number.isFinite(value) ? value : String(value);
  }
  if (ArrayBuffer.isView(value)) {
    return Array.from(value, plain);
  }
  if (Array.isArray(value)) {
    return value.map(plain);
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
