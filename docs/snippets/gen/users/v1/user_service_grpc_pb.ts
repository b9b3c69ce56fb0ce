// Stands for grpc-tools output in the docs' code blocks: the type-test fixture of that shape.
export * from '../../../../../test/types/fixtures/grpc-tools/user_service_grpc_pb.js';
