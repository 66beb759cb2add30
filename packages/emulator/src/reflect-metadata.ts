/**
 * @peculiar/x509 uses tsyringe, which throws at load time unless a Reflect metadata polyfill is
 * present, and none is installed. tsyringe needs only these three functions, so provide them
 * (when nobody else has) instead of pulling in another package.
 */
type Store = WeakMap<object, Map<unknown, unknown>>;

interface MetadataReflect {
  getMetadata?: (key: unknown, target: object) => unknown;
  getOwnMetadata?: (key: unknown, target: object) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object) => void;
}

export function ensureReflectMetadata(): void {
  const reflect = Reflect as unknown as MetadataReflect;
  if (typeof reflect.getMetadata === "function") return;
  const store: Store = new WeakMap();
  const own = (target: object): Map<unknown, unknown> | undefined => store.get(target);
  reflect.defineMetadata = (key, value, target) => {
    let map = own(target);
    if (map === undefined) {
      map = new Map();
      store.set(target, map);
    }
    map.set(key, value);
  };
  reflect.getOwnMetadata = (key, target) => own(target)?.get(key);
  reflect.getMetadata = (key, target) => {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
      const map = own(o);
      if (map?.has(key) === true) return map.get(key);
    }
    return undefined;
  };
}
