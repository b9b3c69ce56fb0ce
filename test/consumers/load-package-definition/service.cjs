// @ts-check
// users.v1.UserService, loaded at run time with @grpc/proto-loader (no generated code): its
// client methods are untyped, as grpc-js's own dynamic clients are.
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(path.join(__dirname, '../../../protos/user_service.proto'), { longs: Number, defaults: true });
const pkg = /** @type {any} */ (grpc.loadPackageDefinition(definition));

/** @type {grpc.ServiceClientConstructor} */
const UserService = pkg.users.v1.UserService;

module.exports = { UserService };
