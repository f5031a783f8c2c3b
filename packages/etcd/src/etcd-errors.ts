import {
  ClosedError,
  InvalidArgumentError,
  isTenureError,
  PermissionDeniedError,
  UnavailableError,
} from '@tenure/core';
import { SessionGoneError } from '@tenure/core/internal';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
} from 'etcd3';

/**
 * Maps what the etcd3 client throws to tenure's errors: an unknown lease is a lost session,
 * refused credentials are a {@link PermissionDeniedError}, a malformed request an
 * {@link InvalidArgumentError}, anything else (unreachable, deadline exceeded, leader change
 * in progress) an {@link UnavailableError} that is retried.
 */
export function toTenureError(error: unknown, what: string, leaseId?: string): Error {
  if (isTenureError(error) || error instanceof SessionGoneError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof EtcdLeaseInvalidError) return new SessionGoneError(leaseId ?? '?');
  if (
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdRoleNotGrantedError ||
    error instanceof EtcdUserNotFoundError ||
    error instanceof GRPCUnauthenticatedError ||
    /certificate|handshake|SSL|TLS|user name is empty/i.test(message)
  ) {
    return new PermissionDeniedError(`etcd refused ${what}: ${message}`, { cause: error });
  }
  if (error instanceof GRPCInvalidArgumentError) {
    return new InvalidArgumentError('request', `etcd refused ${what}: ${message}`, {
      cause: error,
    });
  }
  if (error instanceof ClientClosedError) {
    return new ClosedError(`etcd client closed during ${what}`, { cause: error });
  }
  // An expired auth token (EtcdInvalidAuthTokenError) is renewed by the client: retry.
  return new UnavailableError(`etcd ${what} failed: ${message}`, { cause: error });
}

/** {@link toTenureError} typed for rethrowing. */
export function rethrow(what: string, leaseId?: string): (error: unknown) => never {
  return (error: unknown) => {
    throw toTenureError(error, what, leaseId);
  };
}
