// A promise and the function that resolves it, for a test and the code it drives to tell each
// other "done" (Promise.withResolvers, which Node 20 lacks).
export interface Signal<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function signal<T = void>(): Signal<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}
