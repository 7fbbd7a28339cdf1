# cython: language_level=3
"""The one JSON string scanner of the compiled readers, shared by envelope.pyx and flowstate.pyx
(cimported: verbatim C, inline, so no module of its own at run time; each module gets its copy).
wire.pyx's writer scan (``_plain8``) has another stop set (also ``& < >``) and stays its own."""


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif

    /* What ends a run of plain bytes inside a JSON string: a quote and a backslash always; (TEXT)
       also a byte below 0x20; (STRICT) also a byte from 0x80. */
    #define MMATE_STOP_ANY 0
    #define MMATE_STOP_TEXT 1
    #define MMATE_STOP_STRICT 2

    #define MMATE_ONES 0x0101010101010101ULL
    #define MMATE_HIGHS 0x8080808080808080ULL
    #define MMATE_R0 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0
    #define MMATE_R1 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
    #define MMATE_RQ 0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0 /* 0x20-0x2f: the quote 0x22 */
    #define MMATE_RB 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0 /* 0x50-0x5f: the backslash 0x5c */

    /* the byte tables of the three stop sets (1: stops), for the last bytes one by one */
    static const unsigned char mmate_stop_tables[3][256] = {
        {MMATE_R0, MMATE_R0, MMATE_RQ, MMATE_R0, MMATE_R0, MMATE_RB, MMATE_R0, MMATE_R0,
         MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0},
        {MMATE_R1, MMATE_R1, MMATE_RQ, MMATE_R0, MMATE_R0, MMATE_RB, MMATE_R0, MMATE_R0,
         MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0, MMATE_R0},
        {MMATE_R1, MMATE_R1, MMATE_RQ, MMATE_R0, MMATE_R0, MMATE_RB, MMATE_R0, MMATE_R0,
         MMATE_R1, MMATE_R1, MMATE_R1, MMATE_R1, MMATE_R1, MMATE_R1, MMATE_R1, MMATE_R1},
    };

    /* The index of the first byte from p[i] in the stop set ``mode`` (a constant at every call:
       the compiler keeps only its branch); n when there is none before n. 16 bytes at a time with
       SSE2 (signed "< 0x20" is exactly "< 0x20 or >= 0x80"), else 8 at a time (word tricks that
       never miss a stop; the byte loop then finds it); the last bytes one by one. */
    static inline Py_ssize_t mmate_stop_at(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                                           int mode) {
        const unsigned char* stop = mmate_stop_tables[mode];
    #if defined(__SSE2__)
        const __m128i q = _mm_set1_epi8(34), b = _mm_set1_epi8(92), c = _mm_set1_epi8(32);
        const __m128i c1 = _mm_set1_epi8(31);
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i*)(p + i));
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, b));
            if (mode == MMATE_STOP_STRICT)
                hit = _mm_or_si128(hit, _mm_cmplt_epi8(x, c));
            else if (mode == MMATE_STOP_TEXT)
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(x, c1), x));
            unsigned int m = (unsigned int)_mm_movemask_epi8(hit);
            if (m)
                return i + __builtin_ctz(m);
            i += 16;
        }
    #else
        while (i + 8 <= n) {
            unsigned long long x, hit;
            memcpy(&x, p + i, 8);
            unsigned long long xq = x ^ (MMATE_ONES * 34), xb = x ^ (MMATE_ONES * 92);
            hit = ((xq - MMATE_ONES) & ~xq) | ((xb - MMATE_ONES) & ~xb);
            if (mode != MMATE_STOP_ANY)
                hit |= (x - MMATE_ONES * 32) & ~x;
            if (mode == MMATE_STOP_STRICT)
                hit |= x;
            if (hit & MMATE_HIGHS)
                break;  /* the byte loop finds which one (within these 8 bytes) */
            i += 8;
        }
    #endif
        while (i < n && !stop[p[i]])
            i++;
        return i;
    }
    """
    enum:
        STOP_ANY "MMATE_STOP_ANY"
        STOP_TEXT "MMATE_STOP_TEXT"
        STOP_STRICT "MMATE_STOP_STRICT"
    Py_ssize_t stop_at "mmate_stop_at"(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                                       int mode) noexcept nogil
