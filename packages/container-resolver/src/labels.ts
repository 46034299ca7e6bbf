import { previewPortSchema } from '@sandbox/error-contract';

/** Label that registers a container's preview port when it starts (declarative registration). */
export const PREVIEW_PORT_LABEL = 'sandbox.preview.port';
/**
 * Label saying how the path routes serve the labelled port: `false` keeps their prefix (the registration
 * option `stripPrefix`), for an app started with its public base; `true`, or no label, strips it.
 */
export const PREVIEW_STRIP_PREFIX_LABEL = 'sandbox.preview.strip-prefix';
/** Label naming the network whose address serves a container's preview; overrides `PREVIEW_NETWORK`. */
export const PREVIEW_NETWORK_LABEL = 'sandbox.preview.network';

/** The preview port a container declares through {@link PREVIEW_PORT_LABEL}, if it is a valid port. */
export function previewPortFromLabels(labels: Readonly<Record<string, string>>): number | undefined {
  const raw = labels[PREVIEW_PORT_LABEL];
  // Labels are strings; only a plain decimal integer counts ("3000", not "3e3" or " 3000").
  if (raw === undefined || !/^[0-9]{1,5}$/.test(raw)) return undefined;
  const parsed = previewPortSchema.safeParse(Number(raw));
  return parsed.success ? parsed.data : undefined;
}

/**
 * The `stripPrefix` a container declares through {@link PREVIEW_STRIP_PREFIX_LABEL}: `true` or `false`
 * exactly, else `undefined` (the default applies; a typo must not change routing silently either way).
 */
export function previewStripPrefixFromLabels(labels: Readonly<Record<string, string>>): boolean | undefined {
  const raw = labels[PREVIEW_STRIP_PREFIX_LABEL];
  return raw === 'true' ? true : raw === 'false' ? false : undefined;
}

/** The network a container asks to be reached on through {@link PREVIEW_NETWORK_LABEL}, if any. */
export function previewNetworkFromLabels(labels: Readonly<Record<string, string>>): string | undefined {
  const network = labels[PREVIEW_NETWORK_LABEL]?.trim();
  return network ? network : undefined;
}
