// An in-process UserService for the examples: a real grpc-js server on 127.0.0.1, port 0.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const PROTO = fileURLToPath(new URL('../protos/user_service.proto', import.meta.url));

/** `users.v1.UserService`, loaded at run time (its methods are untyped: `any`). */
export function loadUserService(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(PROTO, { longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    users: { v1: { UserService: grpc.ServiceClientConstructor } };
  };
  return pkg.users.v1.UserService;
}

export interface EmbeddedServer {
  /** `127.0.0.1:<port>`. */
  address: string;
  /** Stops at once, cutting calls in flight: "the backend goes down". */
  kill(): void;
}

/** Starts a UserService that answers after `delayMs` (default 0). */
export async function startUserServer(options: { delayMs?: number } = {}): Promise<EmbeddedServer> {
  const server = new grpc.Server();
  server.addService(loadUserService().service, {
    QueryBasicInfoByID(
      call: grpc.ServerUnaryCall<{ id: number }, unknown>,
      callback: grpc.sendUnaryData<{ id: number; name: string; email: string }>,
    ) {
      const { id } = call.request;
      const reply = () => callback(null, { id, name: `user-${id}`, email: `user${id}@example.test` });
      if (options.delayMs) setTimeout(reply, options.delayMs);
      else reply();
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p)));
  });
  return { address: `127.0.0.1:${port}`, kill: () => server.forceShutdown() };
}
