import { isPreviewError } from '@sandbox/error-contract';

/** The PreviewError a resolve rejects with, as code, message and status. */
export async function failure(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; status: number }> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  if (!isPreviewError(error)) throw error;
  return { code: error.code, message: error.message, status: error.status };
}
