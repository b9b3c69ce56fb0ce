// ts-proto output (outputServices=grpc-js) in the docs' code blocks: the generated type-test fixture.
export * from '../../../../test/types/fixtures/ts-proto/user_service.js';
