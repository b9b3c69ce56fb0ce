import { status } from '@grpc/grpc-js';

/**
 * grpc-js's own failures about a message: a request it could not serialize, a response it
 * could not parse, a message over a size limit. The server's health is not in question and the
 * same bytes would fail again, so these are neither retried nor counted by the breaker.
 */
export function isLocalMessageFailure(code: number, details: string): boolean {
  switch (code) {
    case status.INTERNAL:
      return details.startsWith('Request message serialization failure') || details.startsWith('Response message parsing error');
    case status.RESOURCE_EXHAUSTED:
      // "Received message larger than max", "Attempted to send message with a size larger than".
      return /larger than/i.test(details);
    default:
      return false;
  }
}
