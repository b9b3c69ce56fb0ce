// proto-loader-gen-types output in the docs' code blocks: the generated type-test fixture.
export * from '../../../../test/types/fixtures/proto-loader/user_service.js';
