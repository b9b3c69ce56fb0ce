// Loads users.v1.UserService at run time with @grpc/proto-loader, typed by the
// proto-loader-gen-types output in gen/ (regenerate: see ../README.md). The loader options must
// match the generator's (longs as numbers, defaults, oneofs).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from '../../types/fixtures/proto-loader/user_service.js';

const PROTO = fileURLToPath(new URL('../../../protos/user_service.proto', import.meta.url));
const definition = protoLoader.loadSync(PROTO, { longs: Number, enums: String, defaults: true, oneofs: true });
export const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
