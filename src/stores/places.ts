/**
 * The first place of `inner` that is one of `outer`'s or lies within one (a directory inside another),
 * null when none does. Places are what StoreDriver.places names.
 */
export function placeWithin(inner: readonly string[], outer: readonly string[]): string | null {
  const within = (place: string, around: string) => place === around || place.startsWith(around.endsWith('/') ? around : `${around}/`);
  return inner.find((place) => outer.some((around) => within(place, around))) ?? null;
}
